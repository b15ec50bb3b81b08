// The CMS-side owner guards in examples/cms-hooks/ and the PHP query-name fixture, without a
// worker or a CMS: requests are signed by tests/support/sign.mjs exactly as the proxy signs them.
//
// - Cockpit: php-cli runs a driver that includes bootstrap.php into a fake Cockpit app (Lime's
//   on()/trigger()/stop()/retrieve() and the content module's save/remove events) with a fake
//   request; one test runs the same driver under PHP's built-in server, so headers, the body and
//   the URI come from a real SAPI.
// - Directus: owner-check.mjs directly, and index.js registered into a stand-in for Directus's
//   Express pipeline (hook middleware, a body parser with express.json's skip rule, token
//   authentication, hook middleware, item routes emitting the filters) on a real HTTP server.
// - tests/fixtures/php-query-names.json: what its script prints, and what $_GET holds.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import directusHook from '../../examples/cms-hooks/directus/index.js';
import * as owner from '../../examples/cms-hooks/directus/owner-check.mjs';
import { verifyGatehouseRequest } from '../../examples/verify-signature/verify.mjs';
import { signGatehouseRequest } from '../support/sign.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const COCKPIT_HOOK = path.join(ROOT, 'examples/cms-hooks/cockpit/bootstrap.php');
const VERIFY_PHP = path.join(ROOT, 'examples/verify-signature/verify.php');
const SECRET = randomBytes(32).toString('base64url');
const NO_PHP = !['/usr/bin/php', '/usr/local/bin/php'].some((p) => existsSync(p)) && !process.env.CI
  && 'php is not installed (scripts/setup.sh installs php-cli as root; CI runs it always)';

let tmp;
before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'gatehouse-cms-hooks-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

let fileCounter = 0;
function tmpFile(name, content) {
  const file = path.join(tmp, `${++fileCounter}-${name}`);
  writeFileSync(file, content);
  return file;
}

function php(args, options = {}) {
  const res = spawnSync('php', args, { encoding: 'utf8', ...options });
  assert.equal(res.status, 0, `php ${args.join(' ')}: ${res.stderr}${res.stdout}`);
  return res.stdout;
}

// ---- The signing helper and the verifiers -----------------------------------------------------

describe('the signing helper and the verifiers', () => {
  test('the helper signs like src/proxy/sign.rs (its fixed-input test vector)', async () => {
    const secret = '0123456789abcdef0123456789abcdef';
    const headers = signGatehouseRequest({
      method: 'POST', target: '/api/content/item/posts', body: '', secret, user: 'usr_1', roles: ['user'],
      forwarded: {}, created: 1_700_000_000,
    });
    assert.equal(headers['signature-input'],
      'gatehouse=("@method" "@path" "@query" "content-digest" "x-gatehouse-auth" "x-gatehouse-roles" "x-gatehouse-user");created=1700000000;keyid="gatehouse";alg="hmac-sha256"');
    assert.equal(headers['content-digest'], 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
    const ok = await verifyGatehouseRequest({ method: 'POST', url: 'https://cms.example/api/content/item/posts', headers, body: '', secret, now: 1_700_000_000_000 });
    assert.deepEqual(ok, { ok: true, auth: 'access_token', user: 'usr_1', roles: ['user'] });
  });

  const forwarded = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'site.example', 'x-forwarded-proto': 'https' };
  const body = '{"data":{"title":"t","author":"usr_alice"}}';
  const target = '/api/content/item/posts?lang=de';
  const signed = () => signGatehouseRequest({ method: 'POST', target, body, secret: SECRET, user: 'usr_alice', roles: ['user'], forwarded });

  test('the covered x-forwarded-* headers come in the proxy\'s order', () => {
    const input = signed()['signature-input'];
    assert.match(input, /^gatehouse=\("@method" "@path" "@query" "content-digest" "x-forwarded-for" "x-forwarded-host" "x-forwarded-proto" "x-gatehouse-auth" "x-gatehouse-roles" "x-gatehouse-user"\);created=\d+;keyid="gatehouse";alg="hmac-sha256"$/);
  });

  test('verify.mjs covers the x-forwarded-* headers Signature-Input lists', async () => {
    const headers = signed();
    const request = { method: 'POST', url: `http://cms.invalid${target}`, headers, body, secret: SECRET };
    assert.deepEqual(await verifyGatehouseRequest(request), { ok: true, auth: 'access_token', user: 'usr_alice', roles: ['user'] });
    for (const name of Object.keys(forwarded)) {
      const changed = await verifyGatehouseRequest({ ...request, headers: { ...headers, [name]: `${headers[name]}, 10.0.0.1` } });
      assert.equal(changed.ok, false, `accepted a changed ${name}`);
      const { [name]: _, ...without } = headers;
      assert.equal((await verifyGatehouseRequest({ ...request, headers: without })).ok, false, `accepted without ${name}`);
    }
  });

  test('verify.php covers the x-forwarded-* headers Signature-Input lists', { skip: NO_PHP }, () => {
    const headers = signed();
    const check = (h) => {
      const input = tmpFile('request.json', JSON.stringify({ uri: target, headers: h, body, secret: SECRET }));
      return php(['-r', `require ${JSON.stringify(VERIFY_PHP)};
        $r = json_decode(file_get_contents($argv[1]), true);
        echo json_encode(gatehouse_verify('POST', $r['uri'], $r['headers'], $r['body'], $r['secret']));`, input]);
    };
    // Header names as getallheaders() gives them.
    const titled = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase()), v]));
    assert.deepEqual(JSON.parse(check(titled)), { auth: 'access_token', user: 'usr_alice', roles: ['user'] });
    for (const name of Object.keys(forwarded)) {
      assert.equal(check({ ...headers, [name]: `${headers[name]}, 10.0.0.1` }), 'null', `accepted a changed ${name}`);
      const { [name]: _, ...without } = headers;
      assert.equal(check(without), 'null', `accepted without ${name}`);
    }
  });

  test('the Directus hook ships an identical copy of verify.mjs', () => {
    assert.equal(
      readFileSync(path.join(ROOT, 'examples/cms-hooks/directus/verify.mjs'), 'utf8'),
      readFileSync(path.join(ROOT, 'examples/verify-signature/verify.mjs'), 'utf8'),
      'cp examples/verify-signature/verify.mjs examples/cms-hooks/directus/verify.mjs',
    );
  });
});

// ---- Cockpit ------------------------------------------------------------------------------------

// Mimics what bootstrap.php touches in Cockpit v2: Lime\App::on()/trigger() (priorities, by-ref
// parameters, `false` ends the event), stop() (throws, as Lime's StopException does), retrieve()
// (config.php values), the dataStorage service, and the content module's saveItem() / remove(),
// which trigger the events right before writing. Under `php -S` the request is real; under
// php-cli the driver fills $_SERVER and the hook reads the body from the file `input` names.
const COCKPIT_DRIVER = String.raw`<?php
$caseFile = PHP_SAPI === 'cli-server' ? ($_SERVER['HTTP_X_TEST_CASE'] ?? '') : ($argv[1] ?? '');
$case = json_decode(file_get_contents($caseFile), true);
if (PHP_SAPI === 'cli') {
    $_SERVER['REQUEST_METHOD'] = $case['method'];
    $_SERVER['REQUEST_URI'] = $case['uri'];
    foreach ($case['headers'] as $name => $value) {
        $key = strtoupper(str_replace('-', '_', $name));
        $_SERVER[in_array($key, ['CONTENT_TYPE', 'CONTENT_LENGTH'], true) ? $key : "HTTP_$key"] = $value;
    }
}
if (array_key_exists('api', $case)) define('APP_API_REQUEST', $case['api']);
putenv('UPSTREAM_SIGNING_SECRET=' . $case['secret']);

class FakeStop extends Exception {}
class FakeStorage {
    public array $collections;
    public array $queries = [];
    function __construct(array $collections) { $this->collections = $collections; }
    function findOne(string $collection, ?array $filter = null, ?array $projection = null): ?array {
        $this->queries[] = [$collection, $filter];
        foreach ($this->collections[$collection] ?? [] as $doc) {
            if (isset($filter['_id']) && $doc['_id'] === $filter['_id']) return $doc;
        }
        return null;
    }
}
class FakeApp {
    public $response = null;
    public FakeStorage $dataStorage;
    private array $events = [];
    private array $config;
    function __construct(array $config, FakeStorage $storage) { $this->config = $config; $this->dataStorage = $storage; }
    function on($event, $callback, int $priority = 0) {
        if ($callback instanceof Closure) $callback = $callback->bindTo($this, $this);
        $this->events[$event][] = ['fn' => $callback, 'prio' => $priority];
        return $this;
    }
    function trigger(string $event, array $params = []) {
        if (empty($this->events[$event])) return $this;
        $queue = new SplPriorityQueue();
        foreach ($this->events[$event] as $index => $action) $queue->insert($index, $action['prio']);
        while ($queue->valid()) {
            $index = $queue->current();
            if (call_user_func_array($this->events[$event][$index]['fn'], $params) === false) break;
            $queue->next();
        }
        return $this;
    }
    function retrieve(string $key, $default = null) { return $this->config[$key] ?? $default; }
    function stop($data = null, ?int $status = null): void {
        $this->response = ['status' => $status, 'body' => $data];
        throw new FakeStop();
    }
}

$app = new FakeApp($case['config'] ?? [], new FakeStorage($case['stored'] ?? []));
if ($case['web'] ?? true) $app->response = new stdClass(); // Lime has a response while it runs a request
// A listener of the site's own that ends the event: the guard must have run before it.
$app->on('content.item.save.before', fn () => false, 0);
include $case['hook']; // as Cockpit includes config/bootstrap.php, with $app in scope

$model = $case['model'];
$collection = "content/collections/{$model}";
$result = ['done' => false];
try {
    if ($case['op'] === 'remove') {
        $filter = $case['filter'];
        $app->trigger('content.remove.before', [$model, &$filter, $collection]);
    } else {
        $item = $case['item'];
        $isUpdate = isset($item['_id']);
        if (!$isUpdate) $item = array_merge($case['defaults'] ?? [], $item);
        $app->trigger('content.item.save.before', [$model, &$item, $isUpdate, $collection]);
        $app->trigger("content.item.save.before.{$model}", [&$item, $isUpdate, $collection]);
    }
    $result['done'] = true;
} catch (FakeStop $e) {
    $result['status'] = $app->response['status'];
    $result['error'] = $app->response['body']['error'] ?? null;
} catch (Throwable $e) {
    $result['exception'] = $e->getMessage();
}
$result['queries'] = $app->dataStorage->queries;
header('content-type: application/json');
echo json_encode($result);
`;

describe('Cockpit v2 hook (examples/cms-hooks/cockpit/bootstrap.php)', { skip: NO_PHP, timeout: 60_000 }, () => {
  let driver;
  before(() => {
    driver = tmpFile('cockpit-driver.php', COCKPIT_DRIVER);
  });

  const STORED = {
    'content/collections/posts': [
      { _id: 'p-alice', title: 'mine', author: 'usr_alice' },
      { _id: 'p-bob', title: 'theirs', author: 'usr_bob' },
      { _id: 'p-nobody', title: 'no owner', author: null },
    ],
  };
  const ALICE = { user: 'usr_alice', roles: ['user'] };

  /**
   * Runs one save (or remove) through the hook under php-cli. `item` is what Cockpit derives
   * from the body `{"data": item}`; `signAs` null sends no signature; `tamper` changes the request
   * after signing.
   */
  function cockpit({
    op = 'save', item, filter, model = 'posts', method = op === 'remove' ? 'DELETE' : 'POST',
    target, body, signAs = ALICE, forwarded, created, secret = SECRET, config = {}, api = 1, web = true,
    tamper = (r) => r,
  }) {
    target ??= op === 'remove' ? `/api/content/item/${model}/${filter?._id}` : `/api/content/item/${model}`;
    body ??= op === 'remove' ? '' : JSON.stringify({ data: item });
    const headers = { 'content-type': 'application/json', 'api-key': 'the-cms-key' };
    if (signAs) Object.assign(headers, signGatehouseRequest({ method, target, body, secret, ...signAs, forwarded, created }));
    const request = tamper({ method, uri: target, headers, body });
    const input = tmpFile('body', request.body);
    const caseFile = tmpFile('case.json', JSON.stringify({
      hook: COCKPIT_HOOK, api, web, op, model, item, filter, method: request.method, uri: request.uri,
      headers: request.headers, secret: SECRET, stored: STORED, defaults: { title: null, author: null },
      config: { gatehouse: { input, ...config } },
    }));
    return JSON.parse(php([driver, caseFile]));
  }
  const refused = (result, reason) => {
    assert.equal(result.done, false, JSON.stringify(result));
    assert.equal(result.status, 403, JSON.stringify(result));
    assert.equal(result.error, `Gatehouse: ${reason}`);
  };

  test('a signed create whose author is the signed user is saved', () => {
    const r = cockpit({ item: { title: 'hello', author: 'usr_alice' } });
    assert.equal(r.done, true, JSON.stringify(r));
    assert.deepEqual(r.queries, [], 'a create loads nothing');
  });

  test('a create whose author is someone else, or missing, is refused', () => {
    refused(cockpit({ item: { title: 'x', author: 'usr_bob' } }), 'author must be the signed user');
    refused(cockpit({ item: { title: 'x' } }), 'author must be the signed user');
    refused(cockpit({ item: { title: 'x', author: ['usr_alice'] } }), 'author must be the signed user');
  });

  test('an update of the signed user\'s own stored item is saved; the stored item is loaded by _id', () => {
    const r = cockpit({ item: { _id: 'p-alice', title: 'edited', author: 'usr_alice' } });
    assert.equal(r.done, true, JSON.stringify(r));
    assert.deepEqual(r.queries, [['content/collections/posts', { _id: 'p-alice' }]]);
    assert.equal(cockpit({ item: { _id: 'p-alice', title: 'no author field sent' } }).done, true);
  });

  test('an update of someone else\'s stored item is refused, whatever author the save carries', () => {
    refused(cockpit({ item: { _id: 'p-bob', title: 'taken', author: 'usr_alice' } }), 'the item belongs to another user (author)');
    refused(cockpit({ item: { _id: 'p-bob', title: 'taken' } }), 'the item belongs to another user (author)');
    refused(cockpit({ item: { _id: 'p-nobody', title: 'taken', author: 'usr_alice' } }), 'the item belongs to another user (author)');
  });

  test('an update that gives the own item away, or names a missing one, is refused', () => {
    refused(cockpit({ item: { _id: 'p-alice', author: 'usr_bob' } }), 'author must be the signed user');
    refused(cockpit({ item: { _id: 'p-missing', title: 'x', author: 'usr_alice' } }), 'the item to update does not exist');
  });

  test('an _id that is a query operator is refused, even for an editor', () => {
    refused(cockpit({ item: { _id: { $ne: '' }, author: 'usr_alice' } }), 'an update must name one item by a string _id');
    refused(cockpit({ item: { _id: { $ne: '' } }, signAs: { user: 'usr_ed', roles: ['user', 'editor'] } }), 'an update must name one item by a string _id');
  });

  test('an unsigned save is refused (a request made with the CMS key alone)', () => {
    refused(cockpit({ item: { title: 'x', author: 'usr_alice' }, signAs: null }), 'the request is not signed by Gatehouse');
    refused(cockpit({ item: { _id: 'p-alice', title: 'x' }, signAs: null }), 'the request is not signed by Gatehouse');
  });

  test('a tampered request is refused: body, user, roles, path, query, method, age, secret', () => {
    const item = { title: 'x', author: 'usr_alice' };
    const notSigned = 'the request is not signed by Gatehouse';
    refused(cockpit({ item, tamper: (r) => ({ ...r, body: r.body.replace('"x"', '"y"') }) }), notSigned);
    refused(cockpit({ item: { title: 'x', author: 'usr_bob' }, tamper: (r) => ({ ...r, headers: { ...r.headers, 'x-gatehouse-user': 'usr_bob' } }) }), notSigned);
    refused(cockpit({ item: { _id: 'p-bob', title: 'x' }, tamper: (r) => ({ ...r, headers: { ...r.headers, 'x-gatehouse-roles': 'user,editor' } }) }), notSigned);
    refused(cockpit({ item, target: '/api/content/item/pages', tamper: (r) => ({ ...r, uri: '/api/content/item/posts' }) }), notSigned);
    refused(cockpit({ item, tamper: (r) => ({ ...r, uri: `${r.uri}?populate=1` }) }), notSigned);
    refused(cockpit({ item, tamper: (r) => ({ ...r, method: 'PUT' }) }), notSigned);
    refused(cockpit({ item, created: Math.floor(Date.now() / 1000) - 301 }), notSigned);
    refused(cockpit({ item, secret: 'another secret of at least thirty-two characters' }), notSigned);
    refused(cockpit({ item, tamper: (r) => ({ ...r, headers: { ...r.headers, 'x-forwarded-proto': 'http' } }) }), notSigned);
  });

  test('signed x-forwarded-* headers are accepted, and refused once changed', () => {
    const item = { title: 'x', author: 'usr_alice' };
    const forwarded = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'site.example', 'x-forwarded-proto': 'https' };
    assert.equal(cockpit({ item, forwarded }).done, true);
    // What a reverse proxy in front of Cockpit that appends its hop would do.
    refused(cockpit({ item, forwarded, tamper: (r) => ({ ...r, headers: { ...r.headers, 'x-forwarded-for': '203.0.113.9, 10.0.0.2' } }) }),
      'the request is not signed by Gatehouse');
  });

  test('an editor (bypass_roles) may save any item; an anonymous caller may not save', () => {
    const editor = { user: 'usr_ed', roles: ['user', 'editor'] };
    assert.equal(cockpit({ item: { title: 'x', author: 'usr_bob' }, signAs: editor }).done, true);
    assert.equal(cockpit({ item: { _id: 'p-bob', title: 'edited by an editor' }, signAs: editor }).done, true);
    refused(cockpit({ item: { _id: 'p-bob', title: 'x' }, signAs: editor, config: { bypass_roles: ['chief'] } }), 'the item belongs to another user (author)');
    assert.equal(cockpit({ item: { _id: 'p-bob', title: 'x' }, signAs: { user: 'usr_c', roles: ['chief'] }, config: { bypass_roles: ['chief'] } }).done, true);
    refused(cockpit({ item: { title: 'x', author: null }, signAs: { user: null } }), 'an anonymous caller may not save');
  });

  test('owner_field, models and path_prefix are read from Cockpit\'s config', () => {
    assert.equal(cockpit({ item: { title: 'x', owner: 'usr_alice' }, config: { owner_field: 'owner' } }).done, true);
    refused(cockpit({ item: { title: 'x', author: 'usr_alice' }, config: { owner_field: 'owner' } }), 'owner must be the signed user');
    // A model outside `models` is left alone, signed or not.
    assert.equal(cockpit({ item: { title: 'x' }, model: 'settings', signAs: null, config: { models: ['posts'] } }).done, true);
    refused(cockpit({ item: { title: 'x' }, signAs: null, config: { models: ['posts'] } }), 'the request is not signed by Gatehouse');
    // Gatehouse signed /cms/api/…; a reverse proxy stripped /cms before Cockpit.
    const behindPrefix = (config) => cockpit({
      item: { title: 'x', author: 'usr_alice' }, target: '/cms/api/content/item/posts', config,
      tamper: (r) => ({ ...r, uri: r.uri.replace(/^\/cms/, '') }),
    });
    assert.equal(behindPrefix({ path_prefix: '/cms' }).done, true);
    refused(behindPrefix({}), 'the request is not signed by Gatehouse');
  });

  test('the admin UI and the CLI are not checked unless enforce is "always"', () => {
    const item = { title: 'x', author: 'usr_bob' };
    assert.equal(cockpit({ item, signAs: null, api: 0 }).done, true, 'an admin UI save (APP_API_REQUEST = 0)');
    refused(cockpit({ item, signAs: null, api: 0, config: { enforce: 'always' } }), 'the request is not signed by Gatehouse');
    // No web request (tower, FrankenPHP worker mode): the refusal is an exception, which also
    // ends saveItem() before it writes.
    const cli = cockpit({ item, signAs: null, api: 0, web: false, config: { enforce: 'always' } });
    assert.equal(cli.done, false);
    assert.equal(cli.exception, 'Gatehouse: the request is not signed by Gatehouse');
  });

  test('deletes: own item allowed, someone else\'s refused, unsigned refused, editors allowed', () => {
    const r = cockpit({ op: 'remove', filter: { _id: 'p-alice' } });
    assert.equal(r.done, true, JSON.stringify(r));
    assert.deepEqual(r.queries, [['content/collections/posts', { _id: 'p-alice' }]]);
    refused(cockpit({ op: 'remove', filter: { _id: 'p-bob' } }), 'the item belongs to another user (author)');
    refused(cockpit({ op: 'remove', filter: { _id: 'p-alice' }, signAs: null }), 'the request is not signed by Gatehouse');
    refused(cockpit({ op: 'remove', filter: { _id: { $ne: '' } }, target: '/api/content/item/posts/x' }), 'a delete must name one item by a string _id');
    assert.equal(cockpit({ op: 'remove', filter: { _id: 'p-bob' }, signAs: { user: 'usr_ed', roles: ['editor'] } }).done, true);
    assert.equal(cockpit({ op: 'remove', filter: { _id: 'p-gone' } }).done, true, 'deleting nothing');
  });

  test('gatehouse_owner_decision() is a pure function of identity, stored item, item and flag', () => {
    const rows = [
      [null, null, { author: 'u1' }, false, 'the request is not signed by Gatehouse'],
      [{ user: 'u1', roles: [] }, null, { author: 'u1' }, false, null],
      [{ user: 'u1', roles: [] }, null, { author: 'u2' }, false, 'author must be the signed user'],
      [{ user: 'u1', roles: [] }, null, { _id: 'a', author: 'u1' }, false, 'a new item may not name an _id'],
      [{ user: 'u1', roles: [] }, { _id: 'a', author: 'u1' }, { _id: 'a' }, true, null],
      [{ user: 'u1', roles: [] }, { _id: 'a', author: 'u2' }, { _id: 'a', author: 'u1' }, true, 'the item belongs to another user (author)'],
      [{ user: 'u1', roles: [] }, null, { _id: 'a' }, true, 'the item to update does not exist'],
      [{ user: 'u1', roles: [] }, { _id: 'a', author: 'u1' }, { _id: 'a', author: 'u2' }, true, 'author must be the signed user'],
      [{ user: 'u1', roles: ['editor'] }, { _id: 'a', author: 'u2' }, { _id: 'a', author: 'u3' }, true, null],
      [{ user: 'u1', roles: ['editor'] }, null, { _id: 5 }, true, 'an update must name one item by a string _id'],
      [{ user: null, roles: [] }, null, { author: null }, false, 'an anonymous caller may not save'],
      [{ user: 'u1', roles: [] }, { _id: 'a', author: 1 }, { _id: 'a' }, true, 'the item belongs to another user (author)'],
    ];
    const input = tmpFile('rows.json', JSON.stringify(rows));
    const out = php(['-r', `require ${JSON.stringify(COCKPIT_HOOK)};
      $rows = json_decode(file_get_contents($argv[1]), true);
      $o = gatehouse_cockpit_options([]);
      echo json_encode(array_map(fn ($r) => gatehouse_owner_decision($r[0], $r[1], $r[2], $r[3], $o), $rows));`, input]);
    assert.deepEqual(JSON.parse(out), rows.map((r) => r[4]));
  });

  test('under PHP\'s built-in server (real headers, php://input, REQUEST_URI)', async () => {
    const server = spawn('php', ['-S', '127.0.0.1:0', driver], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const port = await phpServerPort(server);
      const send = async ({ item, signAs = ALICE, tamper = (r) => r, target = '/api/content/item/posts?lang=de' }) => {
        const body = JSON.stringify({ data: item });
        const headers = { 'content-type': 'application/json' };
        if (signAs) Object.assign(headers, signGatehouseRequest({ method: 'POST', target, body, secret: SECRET, ...signAs }));
        const r = tamper({ target, headers, body });
        const caseFile = tmpFile('case.json', JSON.stringify({
          hook: COCKPIT_HOOK, api: 1, op: 'save', model: 'posts', item, secret: SECRET, stored: STORED,
          defaults: { title: null, author: null }, config: {},
        }));
        const res = await fetch(`http://127.0.0.1:${port}${r.target}`, { method: 'POST', headers: { ...r.headers, 'x-test-case': caseFile }, body: r.body });
        return res.json();
      };
      assert.equal((await send({ item: { title: 'real', author: 'usr_alice' } })).done, true);
      refused(await send({ item: { title: 'real', author: 'usr_bob' } }), 'author must be the signed user');
      refused(await send({ item: { _id: 'p-bob', title: 'x' } }), 'the item belongs to another user (author)');
      refused(await send({ item: { title: 'real', author: 'usr_alice' }, signAs: null }), 'the request is not signed by Gatehouse');
      refused(await send({ item: { title: 'real', author: 'usr_alice' }, tamper: (r) => ({ ...r, body: r.body.replace('real', 'fake') }) }), 'the request is not signed by Gatehouse');
      refused(await send({ item: { title: 'real', author: 'usr_alice' }, tamper: (r) => ({ ...r, target: r.target.replace('de', 'en') }) }), 'the request is not signed by Gatehouse');
      assert.equal((await send({ item: { title: 'x', author: 'usr_bob' }, signAs: { user: 'usr_ed', roles: ['editor'] } })).done, true);
    } finally {
      server.kill();
    }
  });
});

function phpServerPort(child) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`php -S did not start: ${seen}`)), 10_000);
    child.stderr.on('data', (d) => {
      seen += d;
      const m = /Development Server \(http:\/\/127\.0\.0\.1:(\d+)\) started/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`php -S exited with ${code}: ${seen}`)));
  });
}

// ---- Directus -----------------------------------------------------------------------------------

describe('Directus 11 hook: owner-check.mjs', () => {
  const options = owner.readOptions({ UPSTREAM_SIGNING_SECRET: SECRET });

  test('options: defaults, and values as Directus\'s env casts them', () => {
    assert.deepEqual(options, {
      secret: SECRET, ownerField: 'author', bypassRoles: ['editor'], collections: null, exempt: ['admin'],
      pathPrefix: '', maxAgeSeconds: 300, maxBodyBytes: 1024 * 1024,
    });
    const cast = owner.readOptions({
      UPSTREAM_SIGNING_SECRET: 12345, GATEHOUSE_OWNER_FIELD: 'owner', GATEHOUSE_BYPASS_ROLES: ['editor', 'chief'],
      GATEHOUSE_COLLECTIONS: 'articles', GATEHOUSE_EXEMPT: '', GATEHOUSE_PATH_PREFIX: '/cms/', GATEHOUSE_MAX_AGE: 60,
      MAX_PAYLOAD_SIZE: '100kb',
    });
    assert.equal(cast.secret, '', 'a secret Directus cast to a number is not used');
    assert.equal(cast.ownerField, 'owner');
    assert.deepEqual(cast.bypassRoles, ['editor', 'chief']);
    assert.deepEqual(cast.collections, ['articles']);
    assert.deepEqual(cast.exempt, []);
    assert.equal(cast.pathPrefix, '/cms');
    assert.equal(cast.maxAgeSeconds, 60);
    assert.equal(cast.maxBodyBytes, 100 * 1024);
    assert.deepEqual(owner.readOptions({ GATEHOUSE_BYPASS_ROLES: '' }).bypassRoles, []);
    assert.deepEqual(owner.readOptions({ GATEHOUSE_EXEMPT: 'Admin,app' }).exempt, ['admin', 'app']);
    assert.equal(owner.parseBytes('2mb'), 2 * 1024 * 1024);
    assert.equal(owner.parseBytes(500), 500);
  });

  test('which requests the middleware reads: item writes and GraphQL posts, as Express routes them', () => {
    const rows = [
      ['POST', '/items/articles', 'items'], ['PATCH', '/items/articles/1', 'items'], ['DELETE', '/items/articles/1', 'items'],
      ['PUT', '/items/articles', 'items'], ['post', '/ITEMS/articles', 'items'], ['PATCH', '/items', 'items'],
      ['GET', '/items/articles', null], ['SEARCH', '/items/articles', null], ['POST', '/itemsx', null],
      ['POST', '/graphql', 'graphql'], ['POST', '/GraphQL/', 'graphql'], ['GET', '/graphql', null],
      ['POST', '/graphql/system', null], ['POST', '/files', null], ['POST', '/auth/login', null],
    ];
    for (const [method, p, kind] of rows) assert.equal(owner.guardedRequest(method, p), kind, `${method} ${p}`);
    assert.equal(owner.itemsCollection('/items/articles/1'), 'articles');
    assert.equal(owner.itemsCollection('/Items/my%20posts'), 'my posts');
    assert.equal(owner.itemsCollection('/items'), null);
  });

  test('ownerDecision: creates, updates, bypass, anonymous, unsigned', () => {
    const alice = { auth: 'access_token', user: 'usr_alice', roles: ['user'] };
    const editor = { auth: 'access_token', user: 'usr_ed', roles: ['user', 'editor'] };
    const d = (identity, stored, item, isUpdate) => owner.ownerDecision(identity, stored, item, isUpdate, options);
    assert.equal(d(alice, null, { title: 't', author: 'usr_alice' }, false), null);
    assert.equal(d(alice, null, { title: 't', author: 'usr_bob' }, false), 'author must be the signed user');
    assert.equal(d(alice, null, { title: 't' }, false), 'author must be the signed user');
    assert.equal(d(alice, null, { author: { id: 'usr_alice' } }, false), 'author must be the signed user');
    assert.equal(d(alice, null, [{ author: 'usr_alice' }], false), 'the item must be an object');
    assert.equal(d(alice, { id: 1, author: 'usr_alice' }, { title: 't' }, true), null);
    assert.equal(d(alice, { id: 1, author: 'usr_alice' }, { author: 'usr_bob' }, true), 'author must be the signed user');
    assert.equal(d(alice, { id: 2, author: 'usr_bob' }, { title: 't', author: 'usr_alice' }, true), 'the item belongs to another user (author)');
    assert.equal(d(alice, { id: 3, author: null }, { title: 't' }, true), 'the item belongs to another user (author)');
    assert.equal(d(alice, null, { title: 't' }, true), 'the item to update does not exist');
    assert.equal(d(editor, { id: 2, author: 'usr_bob' }, { author: 'usr_carol' }, true), null);
    assert.equal(d(editor, null, { author: 'usr_carol' }, false), null);
    assert.equal(d({ auth: 'anonymous', user: null, roles: [] }, null, { author: null }, false), 'an anonymous caller may not save');
    assert.equal(d(null, null, { author: 'usr_alice' }, false), 'the request is not signed by Gatehouse');
    assert.equal(owner.ownerDecision(alice, null, { owner: 'usr_alice' }, false, { ...options, ownerField: 'owner' }), null);
  });

  test('updateDecision / deleteDecision over several keys', () => {
    const alice = { auth: 'access_token', user: 'usr_alice', roles: ['user'] };
    const mine = { id: 1, author: 'usr_alice' };
    const theirs = { id: 2, author: 'usr_bob' };
    assert.equal(owner.updateDecision(alice, [mine, mine], { title: 't' }, options), null);
    assert.equal(owner.updateDecision(alice, [mine, theirs], { title: 't' }, options), 'the item belongs to another user (author)');
    assert.equal(owner.updateDecision(alice, [mine, null], { title: 't' }, options), 'the item to update does not exist');
    assert.equal(owner.updateDecision(alice, [], { title: 't' }, options), null, 'an update by query that matched nothing');
    assert.equal(owner.updateDecision(alice, [], { author: 'usr_bob' }, options), 'author must be the signed user');
    assert.equal(owner.updateDecision(null, [], {}, options), 'the request is not signed by Gatehouse');
    assert.equal(owner.deleteDecision(alice, [mine, null], options), null);
    assert.equal(owner.deleteDecision(alice, [mine, theirs], options), 'the item belongs to another user (author)');
    assert.equal(owner.deleteDecision({ user: null, roles: [] }, [], options), 'an anonymous caller may not delete');
    assert.equal(owner.deleteDecision({ user: 'usr_ed', roles: ['editor'] }, [theirs], options), null);
  });

  test('exemption of unsigned Directus users, and the body rules', () => {
    assert.equal(owner.isExempt({ admin: true, app: true }, options), true);
    assert.equal(owner.isExempt({ admin: false, app: true }, options), false);
    assert.equal(owner.isExempt({ admin: false, app: true }, { ...options, exempt: ['admin', 'app'] }), true);
    assert.equal(owner.isExempt({ admin: true }, { ...options, exempt: [] }), false);
    assert.equal(owner.isExempt(null, options), false);
    assert.equal(owner.bodyKind({ 'content-type': 'application/json' }), 'json');
    assert.equal(owner.bodyKind({ 'content-type': 'Application/JSON; charset=UTF-8' }), 'json');
    assert.equal(owner.bodyKind({ 'content-type': 'application/json; charset=utf-16' }), 'charset utf-16 is not supported here');
    assert.equal(owner.bodyKind({ 'content-type': 'text/plain' }), 'other');
    assert.equal(owner.bodyKind({}), 'other');
    assert.equal(owner.bodyKind({ 'content-type': 'application/json', 'content-encoding': 'gzip' }), 'content-encoding gzip is not supported here');
    assert.deepEqual(owner.parseJsonBody(Buffer.from(' \n{"a":1.0}')), { a: 1 });
    assert.deepEqual(owner.parseJsonBody(Buffer.from('\ufeff[1]')), [1]);
    assert.deepEqual(owner.parseJsonBody(Buffer.alloc(0)), {});
    assert.throws(() => owner.parseJsonBody(Buffer.from('"a string"')), SyntaxError);
    assert.throws(() => owner.parseJsonBody(Buffer.from('  ')), SyntaxError);
    assert.throws(() => owner.parseJsonBody(Buffer.from('{bad')), SyntaxError);
  });
});

/**
 * Directus's request pipeline, reduced to what the hook relies on (@directus/api's app.ts):
 * init('middlewares.before') → express.json (skips a request whose req._body is set, as
 * body-parser does) → authenticate (req.accountability from the token) →
 * init('middlewares.after') → item routes whose service emits items.create / items.update (with
 * meta.keys) / items.delete filters with { database, schema, accountability } → Directus's error
 * answer for an error named DirectusError.
 */
async function startDirectusStandIn(env) {
  const inits = {};
  const filters = {};
  const warnings = [];
  directusHook(
    {
      init: (event, handler) => { inits[event] = handler; },
      filter: (event, handler) => { (filters[event] ??= []).push(handler); },
      action() {}, schedule() {}, embed() {},
    },
    { env, logger: { warn: (m) => warnings.push(m), info() {}, error() {} }, services: {}, database: null, getSchema() {} },
  );
  const rows = {
    articles: [{ id: 1, title: 'mine', author: 'usr_alice' }, { id: 2, title: 'theirs', author: 'usr_bob' }],
    tags: [{ id: 1, name: 'x' }],
  };
  const schema = {
    collections: {
      articles: { primary: 'id', fields: { id: {}, title: {}, author: {} } },
      tags: { primary: 'id', fields: { id: {}, name: {} } },
    },
  };
  const queries = [];
  const database = {
    select: (...cols) => ({
      from: (table) => ({
        whereIn: async (col, keys) => {
          queries.push({ table, cols, keys });
          return rows[table].filter((r) => keys.map(String).includes(String(r[col]))).map((r) => Object.fromEntries(cols.map((c) => [c, r[c]])));
        },
      }),
    }),
  };
  const emitFilter = async (event, payload, meta, context) => {
    for (const handler of filters[event] ?? []) {
      const result = await handler(payload, { event, ...meta }, context);
      if (result !== undefined) payload = result;
    }
    return payload;
  };
  const tokens = {
    'Bearer gatehouse-writer': { user: 'svc-gatehouse', role: 'r-writer', admin: false, app: false },
    'Bearer admin': { user: 'svc-admin', role: 'r-admin', admin: true, app: true },
    'Bearer staff': { user: 'svc-staff', role: 'r-staff', admin: false, app: true },
  };
  let nextId = 100;
  const routed = []; // requests that got past the middlewares
  const stack = [];
  const app = { use: (fn) => stack.push(fn) };
  const seenByParser = [];

  await inits['middlewares.before']({ event: 'middlewares.before', app });
  app.use((req, res, next) => { // express.json as Directus wraps it
    if (req._body) { seenByParser.push('skipped'); return next(); }
    seenByParser.push('parsed');
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      req._body = true;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        req.body = text && /^application\/json/i.test(req.headers['content-type'] ?? '') ? JSON.parse(text) : {};
        next();
      } catch (err) {
        next(Object.assign(new Error(err.message), { name: 'DirectusError', status: 400, code: 'INVALID_PAYLOAD' }));
      }
    });
  });
  app.use((req, res, next) => { // authenticate
    req.accountability = { role: null, user: null, roles: [], admin: false, app: false, ...(tokens[req.headers.authorization] ?? {}) };
    next();
  });
  await inits['middlewares.after']({ event: 'middlewares.after', app });
  app.use(async (req, res, next) => { // routes
    routed.push(`${req.method} ${req.path}`);
    try {
      const context = { database, schema, accountability: req.accountability };
      let m;
      if (req.method === 'POST' && (m = /^\/items\/(\w+)$/.exec(req.path))) {
        const items = Array.isArray(req.body) ? req.body : [req.body];
        const created = [];
        for (const item of items) {
          const saved = { id: nextId++, ...(await emitFilter('items.create', item, { collection: m[1] }, context)) };
          rows[m[1]].push(saved);
          created.push(saved);
        }
        return json(res, 200, { data: Array.isArray(req.body) ? created : created[0] });
      }
      if (req.method === 'PATCH' && (m = /^\/items\/(\w+)\/(\d+)$/.exec(req.path))) {
        const payload = await emitFilter('items.update', req.body, { collection: m[1], keys: [Number(m[2])] }, context);
        const row = rows[m[1]].find((r) => r.id === Number(m[2]));
        Object.assign(row ?? {}, payload);
        return json(res, 200, { data: row ?? null });
      }
      if (req.method === 'PATCH' && (m = /^\/items\/(\w+)$/.exec(req.path))) { // batch: { keys, data }
        await emitFilter('items.update', req.body.data, { collection: m[1], keys: req.body.keys }, context);
        return json(res, 200, { data: req.body.keys });
      }
      if (req.method === 'DELETE' && (m = /^\/items\/(\w+)\/(\d+)$/.exec(req.path))) {
        await emitFilter('items.delete', [Number(m[2])], { collection: m[1] }, context);
        rows[m[1]] = rows[m[1]].filter((r) => r.id !== Number(m[2]));
        return json(res, 204, null);
      }
      if (req.method === 'POST' && req.path === '/graphql') { // { mutation: 'create', collection, data }
        const data = await emitFilter('items.create', req.body.data, { collection: req.body.collection }, context);
        return json(res, 200, { data: { [`create_${req.body.collection}_item`]: data } });
      }
      if (req.method === 'POST' && req.path === '/utils/import/articles') { // not read by the hook's middleware
        await emitFilter('items.create', req.body, { collection: 'articles' }, context);
        return json(res, 200, { data: 'imported' });
      }
      if (req.method === 'POST' && req.path === '/flows/trigger/full-access') { // a flow without accountability
        const data = await emitFilter('items.create', req.body, { collection: 'articles' }, { database, schema, accountability: null });
        return json(res, 200, { data });
      }
      json(res, 404, { errors: [{ message: 'Route doesn\'t exist.', extensions: { code: 'ROUTE_NOT_FOUND' } }] });
    } catch (err) {
      next(err);
    }
  });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://directus.invalid');
    req.path = url.pathname;
    req.originalUrl = req.url;
    let i = 0;
    const next = (err) => {
      const fn = stack[i++];
      if (err) {
        if (err.name === 'DirectusError') return json(res, err.status, { errors: [{ message: err.message, extensions: { ...err.extensions, code: err.code } }] });
        return json(res, 500, { errors: [{ message: 'An unexpected error occurred.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }], thrown: String(err) });
      }
      if (!fn) return json(res, 404, {});
      try {
        fn(req, res, next);
      } catch (e) {
        next(e);
      }
    };
    next();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, rows, queries, warnings, seenByParser, routed, stop: () => new Promise((resolve) => server.close(resolve)) };
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body === null ? '' : JSON.stringify(body));
}

describe('Directus 11 hook: index.js in a stand-in for Directus\'s pipeline', { timeout: 30_000 }, () => {
  let d;
  before(async () => {
    d = await startDirectusStandIn({ UPSTREAM_SIGNING_SECRET: SECRET, MAX_PAYLOAD_SIZE: '4kb' });
  });
  after(() => d?.stop());

  const ALICE = { user: 'usr_alice', roles: ['user'] };
  /** Sends `body` (a string, sent as is) signed as `signAs` (null: unsigned); `tamper` after signing. */
  async function send(method, target, body, { signAs = ALICE, token = 'gatehouse-writer', tamper = (r) => r, headers = {}, forwarded } = {}) {
    const h = { 'content-type': 'application/json', ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (signAs) Object.assign(h, signGatehouseRequest({ method, target, body: body ?? '', secret: SECRET, ...signAs, forwarded }));
    const r = tamper({ method, target, headers: h, body });
    const res = await fetch(`${d.url}${r.target}`, { method: r.method, headers: r.headers, body: r.body });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  const refused = (res, reason, code = 'FORBIDDEN', status = 403) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.errors[0].extensions.code, code);
    if (reason) assert.equal(res.body.errors[0].message, reason.startsWith('Invalid') ? reason : `Gatehouse: ${reason}`);
  };

  test('a signed create whose author is the signed user is saved, with the body parsed from the signed bytes', async () => {
    d.seenByParser.length = 0;
    // Not what JSON.stringify would make of the parsed body: the digest is over these bytes.
    const body = '{ "title": "hello",\n  "author": "usr_alice", "n": 1.0 }';
    const res = await send('POST', '/items/articles?fields=id', body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.data, { id: res.body.data.id, title: 'hello', author: 'usr_alice', n: 1 });
    assert.deepEqual(d.seenByParser, ['skipped'], 'express.json skipped the request the hook had read');
  });

  test('a create whose author is someone else or missing is refused; so is one item of a batch', async () => {
    refused(await send('POST', '/items/articles', '{"title":"x","author":"usr_bob"}'), 'author must be the signed user');
    refused(await send('POST', '/items/articles', '{"title":"x"}'), 'author must be the signed user');
    refused(await send('POST', '/items/articles', '[{"title":"a","author":"usr_alice"},{"title":"b","author":"usr_bob"}]'), 'author must be the signed user');
  });

  test('updates: own item saved, someone else\'s refused, giving the own item away refused', async () => {
    assert.equal((await send('PATCH', '/items/articles/1', '{"title":"edited"}')).status, 200);
    assert.deepEqual(d.queries.at(-1), { table: 'articles', cols: ['id', 'author'], keys: [1] });
    refused(await send('PATCH', '/items/articles/2', '{"title":"taken","author":"usr_alice"}'), 'the item belongs to another user (author)');
    refused(await send('PATCH', '/items/articles/1', '{"author":"usr_bob"}'), 'author must be the signed user');
    refused(await send('PATCH', '/items/articles/999', '{"title":"x"}'), 'the item to update does not exist');
    refused(await send('PATCH', '/items/articles', '{"keys":[1,2],"data":{"title":"x"}}'), 'the item belongs to another user (author)');
    assert.equal(d.rows.articles.find((r) => r.id === 2).title, 'theirs');
  });

  test('deletes: own item allowed, someone else\'s refused', async () => {
    const created = await send('POST', '/items/articles', '{"title":"to delete","author":"usr_alice"}');
    assert.equal((await send('DELETE', `/items/articles/${created.body.data.id}`, undefined)).status, 204);
    refused(await send('DELETE', '/items/articles/2', undefined), 'the item belongs to another user (author)');
  });

  test('unsigned item writes are refused, except for exempt Directus users (admins by default)', async () => {
    d.routed.length = 0;
    refused(await send('POST', '/items/articles', '{"title":"x","author":"usr_alice"}', { signAs: null }), 'the request is not signed by Gatehouse');
    refused(await send('PATCH', '/items/articles/1', '{"title":"x"}', { signAs: null }), 'the request is not signed by Gatehouse');
    refused(await send('DELETE', '/items/articles/1', undefined, { signAs: null }), 'the request is not signed by Gatehouse');
    refused(await send('POST', '/items/articles', '{"title":"x"}', { signAs: null, token: null }), 'the request is not signed by Gatehouse');
    refused(await send('POST', '/items/articles', '{"title":"x"}', { signAs: null, token: 'staff' }), 'the request is not signed by Gatehouse');
    assert.deepEqual(d.routed, [], 'refused by the middleware, before any route');
    assert.equal((await send('PATCH', '/items/articles/2', '{"title":"admin edit"}', { signAs: null, token: 'admin' })).status, 200);
    // A signed request is checked even with an admin token.
    refused(await send('PATCH', '/items/articles/2', '{"title":"x"}', { token: 'admin' }), 'the item belongs to another user (author)');
  });

  test('a request whose signature does not match is refused at once: body, identity, path, query, method, age, forwarding headers', async () => {
    const body = '{"title":"x","author":"usr_alice"}';
    const bad = (why) => `bad signature (${why})`;
    refused(await send('POST', '/items/articles', body, { tamper: (r) => ({ ...r, body: r.body.replace('"x"', '"y"') }) }), bad('content-digest does not match the body'));
    refused(await send('POST', '/items/articles', body.replace('alice', 'bob'), { tamper: (r) => ({ ...r, headers: { ...r.headers, 'x-gatehouse-user': 'usr_bob' } }) }), bad('bad signature'));
    refused(await send('PATCH', '/items/articles/2', '{"title":"x"}', { tamper: (r) => ({ ...r, headers: { ...r.headers, 'x-gatehouse-roles': 'user,editor' } }) }), bad('bad signature'));
    refused(await send('POST', '/items/articles', body, { tamper: (r) => ({ ...r, target: '/items/tags' }) }), bad('bad signature'));
    refused(await send('POST', '/items/articles', body, { tamper: (r) => ({ ...r, target: `${r.target}?fields=*` }) }), bad('bad signature'));
    refused(await send('POST', '/items/articles', body, { forwarded: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' }, tamper: (r) => ({ ...r, headers: { ...r.headers, 'x-forwarded-for': '203.0.113.9, 10.0.0.2' } }) }), bad('bad signature'));
    refused(await send('PATCH', '/items/articles/1', '{"title":"x"}', { tamper: (r) => ({ ...r, method: 'POST', target: '/items/articles' }) }), bad('bad signature'));
    refused(await send('POST', '/items/articles', body, { signAs: { ...ALICE, created: Math.floor(Date.now() / 1000) - 301 } }), bad('stale or missing created'));
    // Even an exempt admin's request is refused with a wrong signature.
    refused(await send('POST', '/items/articles', body, { token: 'admin', tamper: (r) => ({ ...r, body: '{}' }) }), bad('content-digest does not match the body'));
    assert.equal((await send('POST', '/items/articles', body, { forwarded: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'site.example', 'x-forwarded-proto': 'https' } })).status, 200);
  });

  test('an editor (GATEHOUSE_BYPASS_ROLES) may change any item; an anonymous caller nothing', async () => {
    const editor = { user: 'usr_ed', roles: ['user', 'editor'] };
    assert.equal((await send('PATCH', '/items/articles/2', '{"title":"edited by an editor"}', { signAs: editor })).status, 200);
    assert.equal((await send('POST', '/items/articles', '{"title":"x","author":"usr_bob"}', { signAs: editor })).status, 200);
    refused(await send('POST', '/items/articles', '{"title":"x","author":null}', { signAs: { user: null } }), 'an anonymous caller may not save');
  });

  test('GraphQL and other paths that save items are checked by the filters', async () => {
    const gql = (data) => JSON.stringify({ mutation: 'create', collection: 'articles', data });
    assert.equal((await send('POST', '/graphql', gql({ title: 'g', author: 'usr_alice' }))).status, 200);
    refused(await send('POST', '/graphql', gql({ title: 'g', author: 'usr_bob' })), 'author must be the signed user');
    refused(await send('POST', '/graphql', gql({ title: 'g', author: 'usr_alice' }), { signAs: null }), 'the request is not signed by Gatehouse');
    // A path the middleware does not read counts as unsigned, signature or not.
    refused(await send('POST', '/utils/import/articles', '{"title":"i","author":"usr_alice"}'), 'the request is not signed by Gatehouse');
    assert.equal((await send('POST', '/utils/import/articles', '{"title":"i"}', { signAs: null, token: 'admin' })).status, 200);
    // Directus's own writes without accountability are not checked.
    assert.equal((await send('POST', '/flows/trigger/full-access', '{"title":"f"}', { signAs: null })).status, 200);
  });

  test('a collection without the owner field: creates and updates refused unless bypassed', async () => {
    refused(await send('POST', '/items/tags', '{"name":"t"}'), 'author must be the signed user');
    refused(await send('PATCH', '/items/tags/1', '{"name":"t"}'), 'tags has no author field');
    assert.equal((await send('PATCH', '/items/tags/1', '{"name":"t"}', { signAs: { user: 'usr_ed', roles: ['editor'] } })).status, 200);
  });

  test('bodies: size limit, charset, encoding and invalid JSON as Directus would refuse them', async () => {
    refused(await send('POST', '/items/articles', JSON.stringify({ title: 'x'.repeat(5000), author: 'usr_alice' })), 'the body is too large', 'CONTENT_TOO_LARGE', 413);
    refused(await send('POST', '/items/articles', '{"author":"usr_alice"}', { headers: { 'content-type': 'application/json; charset=latin1' } }), 'charset latin1 is not supported here', 'UNSUPPORTED_MEDIA_TYPE', 415);
    refused(await send('POST', '/items/articles', '{"author":"usr_alice"}', { headers: { 'content-encoding': 'gzip' } }), 'content-encoding gzip is not supported here', 'UNSUPPORTED_MEDIA_TYPE', 415);
    refused(await send('POST', '/items/articles', '"just a string"'), 'Invalid payload. the body must be a JSON object or array.', 'INVALID_PAYLOAD', 400);
    // A body that is not JSON reaches the routes as {} (what express.json leaves).
    refused(await send('POST', '/items/articles', 'title=x&author=usr_alice', { headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 'author must be the signed user');
  });

  test('GATEHOUSE_COLLECTIONS, GATEHOUSE_EXEMPT, GATEHOUSE_OWNER_FIELD and GATEHOUSE_PATH_PREFIX', async () => {
    const other = await startDirectusStandIn({
      UPSTREAM_SIGNING_SECRET: SECRET, GATEHOUSE_COLLECTIONS: 'tags', GATEHOUSE_EXEMPT: ['admin', 'app'],
      GATEHOUSE_OWNER_FIELD: 'name', GATEHOUSE_PATH_PREFIX: '/cms',
    });
    try {
      const post = async (target, body, opts = {}) => {
        const h = { 'content-type': 'application/json', authorization: `Bearer ${opts.token ?? 'gatehouse-writer'}` };
        if (opts.signed !== false) Object.assign(h, signGatehouseRequest({ method: 'POST', target: `/cms${target}`, body, secret: SECRET, ...ALICE }));
        const res = await fetch(`${other.url}${target}`, { method: 'POST', headers: h, body });
        return { status: res.status, body: await res.json() };
      };
      assert.equal((await post('/items/tags', '{"name":"usr_alice"}')).status, 200, 'signed for /cms/items/tags, received as /items/tags');
      refused(await post('/items/tags', '{"name":"usr_bob"}'), 'name must be the signed user');
      assert.equal((await post('/graphql', JSON.stringify({ collection: 'articles', data: { title: 'not guarded' } }))).status, 200);
      assert.equal((await post('/items/tags', '{"name":"x"}', { signed: false, token: 'staff' })).status, 200, 'app users are exempt here');
      refused(await post('/items/tags', '{"name":"x"}', { signed: false }), 'the request is not signed by Gatehouse');
      assert.deepEqual(other.routed, ['POST /items/tags', 'POST /items/tags', 'POST /graphql', 'POST /items/tags']);
      assert.equal((await post('/items/articles', '{"title":"not guarded"}', { signed: false })).status, 200, 'a collection outside GATEHOUSE_COLLECTIONS');
    } finally {
      await other.stop();
    }
  });

  test('without UPSTREAM_SIGNING_SECRET every signed write is refused, with a warning', async () => {
    const other = await startDirectusStandIn({});
    try {
      assert.equal(other.warnings.length, 1);
      const body = '{"title":"x","author":"usr_alice"}';
      const h = { 'content-type': 'application/json', authorization: 'Bearer gatehouse-writer', ...signGatehouseRequest({ method: 'POST', target: '/items/articles', body, secret: SECRET, ...ALICE }) };
      const res = await fetch(`${other.url}/items/articles`, { method: 'POST', headers: h, body });
      assert.equal(res.status, 403);
      assert.equal((await res.json()).errors[0].message, 'Gatehouse: bad signature (no secret)');
    } finally {
      await other.stop();
    }
  });
});

// ---- tests/fixtures/php-query-names.json -------------------------------------------------------

describe('the PHP query-name fixture', { skip: NO_PHP, timeout: 30_000 }, () => {
  const script = path.join(ROOT, 'tests/fixtures/php-query-names.php');
  const fixture = JSON.parse(readFileSync(path.join(ROOT, 'tests/fixtures/php-query-names.json'), 'utf8'));

  test('the JSON is what its script prints with this PHP', () => {
    const fresh = JSON.parse(php([script]));
    assert.match(fixture.php, /^8\.\d+\.\d+/);
    assert.deepEqual(fresh.cases, fixture.cases, `regenerate: php ${path.relative(ROOT, script)} > tests/fixtures/php-query-names.json (fixture from PHP ${fixture.php}, this is ${fresh.php})`);
    assert.ok(fixture.cases.length >= 80);
    assert.deepEqual(fixture.cases.find((c) => c.raw === 'api_key%00x=1').keys, ['api_key']);
  });

  test('PHP\'s built-in server fills $_GET the same way (except one quirk of its own)', async () => {
    const router = tmpFile('get-keys.php', `<?php
      $keys = []; $subkeys = [];
      foreach ($_GET as $k => $v) { $keys[] = (string) $k; if (is_array($v)) $subkeys[(string) $k] = array_map('strval', array_keys($v)); }
      echo json_encode(['keys' => $keys, 'subkeys' => $subkeys ?: new stdClass()]);`);
    const server = spawn('php', ['-S', '127.0.0.1:0', router], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const port = await phpServerPort(server);
      let compared = 0;
      for (const c of fixture.cases) {
        if (/\s/.test(c.raw)) continue; // not sendable in a request line
        const got = JSON.parse(await rawGet(port, `/?${c.raw}`));
        if (c.raw === '?api_key=1') {
          // php -S drops the query's leading '?' (QUERY_STRING is "api_key=1"); a CGI server
          // passes "?api_key=1", which PHP reads as the fixture says.
          assert.deepEqual(got.keys, ['api_key']);
          continue;
        }
        assert.deepEqual(got, { keys: c.keys, subkeys: c.subkeys }, c.raw);
        compared += 1;
      }
      assert.ok(compared >= 75, `only ${compared} compared`);
    } finally {
      server.kill();
    }
  });
});

/** A GET with the request target sent byte for byte (fetch would normalize it). */
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => { out += d; });
    socket.on('end', () => resolve(Buffer.from(out.slice(out.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8')));
    socket.on('error', reject);
    socket.write(`GET ${target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}
