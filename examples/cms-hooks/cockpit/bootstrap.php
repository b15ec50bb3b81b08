<?php
// Gatehouse owner guard for Cockpit v2: defence in depth behind Gatehouse's key-holding proxy.
//
// Gatehouse sets a route's owner field to the caller on every write, but it cannot know who owns
// an item that already exists, and anyone who gets hold of the CMS key can talk to Cockpit
// directly. This hook makes Cockpit itself refuse, before anything is stored:
//
//   - a save or delete made through Cockpit's API (/api/…, REST and GraphQL) that does not carry a
//     valid Gatehouse identity signature (a request made with the key alone, a changed body, …);
//   - a save whose owner field (default `author`) is not the signed user;
//   - an update, or a delete, of an item whose stored owner is not the signed user;
//   - an anonymous caller's save or delete, an update whose `_id` is not a plain string (a query
//     operator such as {"$ne": ""} would make Cockpit update every matching item) and a new
//     item that names an `_id`.
// Callers holding one of the bypass roles (default `editor`) may save and delete any item, but
// only with a valid signature.
//
// Install (see examples/cms-hooks/README.md): copy this file and
// examples/verify-signature/verify.php into one folder under Cockpit's `config/`, e.g.
// `config/gatehouse/`, and load it from `config/bootstrap.php` (create that file if missing):
//
//   <?php include __DIR__ . '/gatehouse/bootstrap.php';
//
// Configure it in `config/config.php` (every key is optional):
//
//   'gatehouse' => [
//       'owner_field'  => 'author',     // a field of the guarded models holding Gatehouse's user id
//       'bypass_roles' => ['editor'],   // Gatehouse roles that may save any item
//       'models'       => null,         // null: every model; or a list such as ['posts', 'comments']
//       'enforce'      => 'api',        // 'api': requests to /api/ only; 'always': every save, even
//                                       // Cockpit's admin UI and CLI (which are then refused)
//       'path_prefix'  => '',           // a path prefix a reverse proxy in front of Cockpit strips
//       'max_age'      => 300,          // seconds a signature stays valid
//   ],
//
// and set UPSTREAM_SIGNING_SECRET (Gatehouse's secret) in Cockpit's `.env` or the server's
// environment, or as 'secret' in that array.
//
// It needs the raw request body for the signature's Content-Digest: Gatehouse's writes are JSON,
// which PHP leaves readable in php://input (a multipart/form-data body is not, so such a save is
// refused). The decision itself is the pure function gatehouse_owner_decision() below; the
// functions after it only read the request and bind to Cockpit's events.

if (!function_exists('gatehouse_verify')) {
    require_once is_file(__DIR__ . '/verify.php') ? __DIR__ . '/verify.php' : __DIR__ . '/../../verify-signature/verify.php';
}

if (!function_exists('gatehouse_owner_decision')) {

    /** The options with their defaults. */
    function gatehouse_cockpit_options(array $options): array
    {
        $o = array_merge([
            'owner_field' => 'author',
            'bypass_roles' => ['editor'],
            'models' => null,
            'enforce' => 'api',
            'path_prefix' => '',
            'max_age' => 300,
            'secret' => null,
            'input' => 'php://input', // where the raw body is read from (tests point it at a file)
        ], $options);
        $o['bypass_roles'] = array_values(array_filter(array_map('strval', (array) $o['bypass_roles']), 'strlen'));
        if ($o['models'] !== null) $o['models'] = array_map('strval', (array) $o['models']);
        return $o;
    }

    /**
     * May this save happen? Pure: no Cockpit, no request. Returns null to allow, or why not.
     *
     * @param array|null $identity what gatehouse_verify() returned: ['auth', 'user', 'roles'], or
     *                             null when the request is not validly signed by Gatehouse
     * @param array|null $stored   the stored item an update changes (null: not found, or a create)
     * @param array      $item     the item about to be saved (on an update only the changed fields,
     *                             plus `_id`; a singleton's is merged with its stored values)
     * @param bool       $isUpdate Cockpit's flag: the item names an existing `_id`
     * @param array      $options  owner_field, bypass_roles
     */
    function gatehouse_owner_decision(?array $identity, ?array $stored, array $item, bool $isUpdate, array $options): ?string
    {
        $field = (string) ($options['owner_field'] ?? 'author');
        if ($identity === null) return 'the request is not signed by Gatehouse';
        // Checked for everyone, editors included: Cockpit passes `_id` to its database as a query.
        if ($isUpdate && !(isset($item['_id']) && is_string($item['_id']) && $item['_id'] !== '')) {
            return 'an update must name one item by a string _id';
        }
        if (!$isUpdate && array_key_exists('_id', $item)) return 'a new item may not name an _id';
        $user = $identity['user'] ?? null;
        if (!is_string($user) || $user === '') return 'an anonymous caller may not save';
        if (gatehouse_owner_bypasses($identity, $options)) return null;
        if ($isUpdate) {
            if ($stored === null) return 'the item to update does not exist';
            if (($stored[$field] ?? null) !== $user) return "the item belongs to another user ({$field})";
            if (array_key_exists($field, $item) && $item[$field] !== $user) return "{$field} must be the signed user";
            return null;
        }
        if (($item[$field] ?? null) !== $user) return "{$field} must be the signed user";
        return null;
    }

    /**
     * May this delete happen? Pure. `$filter` is Cockpit's remove filter; only a single item named
     * by a string `_id` can be checked, so anything else is refused (editors included).
     * `$stored` is that item (null: it does not exist, and deleting nothing is allowed).
     */
    function gatehouse_owner_remove_decision(?array $identity, $filter, ?array $stored, array $options): ?string
    {
        $field = (string) ($options['owner_field'] ?? 'author');
        if ($identity === null) return 'the request is not signed by Gatehouse';
        if (!gatehouse_is_single_id_filter($filter)) return 'a delete must name one item by a string _id';
        $user = $identity['user'] ?? null;
        if (!is_string($user) || $user === '') return 'an anonymous caller may not delete';
        if (gatehouse_owner_bypasses($identity, $options)) return null;
        if ($stored !== null && ($stored[$field] ?? null) !== $user) return "the item belongs to another user ({$field})";
        return null;
    }

    function gatehouse_owner_bypasses(array $identity, array $options): bool
    {
        $roles = is_array($identity['roles'] ?? null) ? $identity['roles'] : [];
        $bypass = (array) ($options['bypass_roles'] ?? []);
        return count(array_intersect(array_map('strval', $roles), array_map('strval', $bypass))) > 0;
    }

    function gatehouse_is_single_id_filter($filter): bool
    {
        return is_array($filter) && count($filter) === 1 && isset($filter['_id'])
            && is_string($filter['_id']) && $filter['_id'] !== '';
    }

    // ---- Reading the request -------------------------------------------------------------------

    /** The current request as gatehouse_verify() wants it. */
    function gatehouse_cockpit_request(array $o): array
    {
        $headers = function_exists('getallheaders') ? getallheaders() : false;
        if (!is_array($headers)) {
            // php-cli and some FastCGI setups: rebuild them from the CGI variables.
            $headers = [];
            foreach ($_SERVER as $key => $value) {
                if (strncmp($key, 'HTTP_', 5) === 0) $headers[str_replace('_', '-', substr($key, 5))] = $value;
            }
            foreach (['CONTENT_TYPE' => 'Content-Type', 'CONTENT_LENGTH' => 'Content-Length'] as $key => $name) {
                if (isset($_SERVER[$key]) && !isset($headers[strtoupper($name)])) $headers[$name] = $_SERVER[$key];
            }
        }
        $body = @file_get_contents((string) $o['input']);
        return [
            'method' => $_SERVER['REQUEST_METHOD'] ?? null,
            'uri' => isset($_SERVER['REQUEST_URI']) ? $o['path_prefix'] . $_SERVER['REQUEST_URI'] : null,
            'headers' => $headers,
            'body' => is_string($body) ? $body : null,
        ];
    }

    /** The verified identity of the current request, or null. */
    function gatehouse_cockpit_identity(array $o): ?array
    {
        $secret = $o['secret'];
        if (!is_string($secret) || $secret === '') {
            $secret = getenv('UPSTREAM_SIGNING_SECRET');
            if (!is_string($secret) || $secret === '') $secret = $_ENV['UPSTREAM_SIGNING_SECRET'] ?? ($_SERVER['UPSTREAM_SIGNING_SECRET'] ?? '');
        }
        $r = gatehouse_cockpit_request($o);
        return gatehouse_verify($r['method'], $r['uri'], $r['headers'], $r['body'], $secret, (int) $o['max_age']);
    }

    /** Whether this save is one the guard checks. */
    function gatehouse_cockpit_guards(array $o, string $modelName): bool
    {
        if ($o['models'] !== null && !in_array($modelName, $o['models'], true)) return false;
        if ($o['enforce'] === 'always') return true;
        // index.php defines APP_API_REQUEST; without it (FrankenPHP worker mode, the CLI) go by the path.
        if (defined('APP_API_REQUEST')) return (bool) APP_API_REQUEST;
        if (PHP_SAPI === 'cli') return false;
        $path = parse_url((string) ($_SERVER['REQUEST_URI'] ?? ''), PHP_URL_PATH);
        return !is_string($path) || strpos($path, '/api/') !== false;
    }

    /** Stops the save: a 403 answer in a web request (Cockpit's own stop()), an exception otherwise. */
    function gatehouse_cockpit_refuse($app, string $reason): void
    {
        if (isset($app->response) && method_exists($app, 'stop')) {
            $app->stop(['error' => "Gatehouse: {$reason}"], 403); // throws Lime\StopException
        }
        throw new RuntimeException("Gatehouse: {$reason}");
    }

    // ---- Binding to Cockpit --------------------------------------------------------------------

    /** Registers the guard on `$app` (Cockpit's Lime\App). */
    function gatehouse_cockpit_install($app, array $options = []): void
    {
        $o = gatehouse_cockpit_options($options);
        // modules/Content/bootstrap.php, saveItem(): trigger('content.item.save.before',
        // [$modelName, &$item, $isUpdate, $collection]) right before dataStorage->save(). A high
        // priority runs the guard before other listeners, one of which returning false would end
        // the event.
        $app->on('content.item.save.before', function ($modelName, &$item, $isUpdate, $collection = null) use ($app, $o) {
            if (!gatehouse_cockpit_guards($o, (string) $modelName)) return;
            $identity = gatehouse_cockpit_identity($o);
            $stored = null;
            if ($identity !== null && $isUpdate && is_string($collection) && isset($item['_id']) && is_string($item['_id'])) {
                $stored = $app->dataStorage->findOne($collection, ['_id' => $item['_id']]);
            }
            $reason = gatehouse_owner_decision($identity, is_array($stored) ? $stored : null, (array) $item, (bool) $isUpdate, $o);
            if ($reason !== null) gatehouse_cockpit_refuse($app, $reason);
        }, 1000000);
        // remove(): trigger('content.remove.before', [$modelName, &$filter, $collection]).
        $app->on('content.remove.before', function ($modelName, &$filter, $collection = null) use ($app, $o) {
            if (!gatehouse_cockpit_guards($o, (string) $modelName)) return;
            $identity = gatehouse_cockpit_identity($o);
            $stored = null;
            if ($identity !== null && is_string($collection) && gatehouse_is_single_id_filter($filter)) {
                $stored = $app->dataStorage->findOne($collection, ['_id' => $filter['_id']]);
            }
            $reason = gatehouse_owner_remove_decision($identity, $filter, is_array($stored) ? $stored : null, $o);
            if ($reason !== null) gatehouse_cockpit_refuse($app, $reason);
        }, 1000000);
    }
}

// Cockpit includes config/bootstrap.php with its Lime\App in `$app`.
if (isset($app) && is_object($app) && method_exists($app, 'on')) {
    gatehouse_cockpit_install($app, method_exists($app, 'retrieve') ? (array) $app->retrieve('gatehouse', []) : []);
}
