// A small content API that behaves like Cockpit v2's content endpoints, for the quick start
// and the tests. It demands its own `api-key` (one read key, one write key), verifies
// Gatehouse's identity signature when given the signing secret, and records what it receives.
//
//   GET  /api/content/items/{collection}        published items (the write key sees drafts too)
//   GET  /api/content/item/{collection}/{id}    one item
//   POST /api/content/item/{collection}         {"data": {...}} saves an item (write key only)
//
// Collections: posts and pages. CLI: node scripts/demo-cms.mjs --port 8789 --read-key K1
// --write-key K2 [--signing-secret S]; it prints one "listening" line.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { verifyGatehouseRequest } from '../examples/verify-signature/verify.mjs';

const COLLECTIONS = ['posts', 'pages'];

function seed() {
  const at = Math.floor(Date.UTC(2026, 0, 1) / 1000);
  const item = (title, state, extra = {}) => ({
    _id: randomBytes(12).toString('hex'),
    _created: at,
    _modified: at,
    _state: state,
    _by: null,
    title,
    ...extra,
  });
  return {
    posts: [
      item('Welcome to the demo', 1, { body: 'Read anonymously through Gatehouse.' }),
      item('Second post', 1, { body: 'Also published.' }),
      item('A draft', 0, { body: 'Only the write key lists drafts.' }),
    ],
    pages: [item('About', 1, { body: 'A page.' })],
  };
}

/**
 * Starts the demo CMS. Returns { url, port, requests, items, close }. `requests` records every
 * request: { method, url, path, query, headers, body, verified }.
 */
export async function startDemoCms({ port = 0, host = '127.0.0.1', readKey, writeKey, signingSecret } = {}) {
  if (!readKey || !writeKey) throw new Error('startDemoCms needs readKey and writeKey');
  const items = seed();
  const requests = [];
  const server = http.createServer((req, res) => {
    // Whatever a client sends, the answer is a status, never a crashed process.
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'Bad request' }));
    });
  });
  async function handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, `http://${req.headers.host ?? host}`);
    const record = {
      method: req.method,
      url: req.url,
      path: url.pathname,
      query: url.search,
      headers: req.headers,
      body: body.toString('utf8'),
      verified: null,
    };
    requests.push(record);
    const send = (status, value, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(value));
    };
    if (signingSecret) {
      try {
        record.verified = await verifyGatehouseRequest({
          method: req.method,
          url: url.href,
          headers: req.headers,
          body,
          secret: signingSecret,
        });
      } catch {
        record.verified = { ok: false, reason: 'unreadable signature' };
        return send(401, { error: 'signature: unreadable' });
      }
      if (!record.verified.ok) return send(403, { error: `signature: ${record.verified.reason}` });
    }
    const key = req.headers['api-key'];
    const access = key === writeKey ? 'write' : key === readKey ? 'read' : null;
    if (!access) return send(401, { error: 'Unauthorized' });

    let m;
    if ((req.method === 'GET' || req.method === 'HEAD') && (m = /^\/api\/content\/items\/([a-z]+)$/.exec(url.pathname))) {
      if (!COLLECTIONS.includes(m[1])) return send(404, { error: 'Collection not found' });
      const list = items[m[1]].filter((i) => access === 'write' || i._state === 1);
      return send(200, list);
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && (m = /^\/api\/content\/item\/([a-z]+)\/([0-9a-f]+)$/.exec(url.pathname))) {
      const item = items[m[1]]?.find((i) => i._id === m[2] && (access === 'write' || i._state === 1));
      return item ? send(200, item) : send(404, { error: 'Item not found' });
    }
    if (req.method === 'POST' && (m = /^\/api\/content\/item\/([a-z]+)$/.exec(url.pathname))) {
      if (access !== 'write') return send(403, { error: 'Permission denied' });
      if (!COLLECTIONS.includes(m[1])) return send(404, { error: 'Collection not found' });
      let parsed;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return send(400, { error: 'Invalid JSON' });
      }
      const data = parsed?.data;
      if (!data || typeof data !== 'object' || Array.isArray(data)) return send(412, { error: 'Item data is missing' });
      if (typeof data.title !== 'string' || !data.title.trim()) return send(412, { error: 'title is required' });
      const now = Math.floor(Date.now() / 1000);
      const saved = { _state: 1, ...data, _id: randomBytes(12).toString('hex'), _created: now, _modified: now };
      items[m[1]].push(saved);
      return send(200, saved);
    }
    return send(404, { error: 'Not found' });
  }
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    requests,
    items,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** The `ROUTES` value the quick start uses: anonymous reads, signed-in users create owned items. */
export function demoRoutes(upstreamUrl) {
  return {
    cms: {
      prefix: '/cms/',
      upstream: `${upstreamUrl}/api/`,
      inject: { header: 'api-key', value: '{secret}' },
      owner_field: 'data._by',
      read: { roles: ['anonymous'], secret: 'CMS_READ_KEY' },
      write: { roles: ['user'], secret: 'CMS_WRITE_KEY' },
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const cms = await startDemoCms({
    port: Number(opt('port') ?? 8789),
    readKey: opt('read-key') ?? process.env.CMS_READ_KEY,
    writeKey: opt('write-key') ?? process.env.CMS_WRITE_KEY,
    signingSecret: opt('signing-secret') ?? process.env.UPSTREAM_SIGNING_SECRET,
  });
  console.log(`demo CMS listening on ${cms.url}`);
  const stop = () => cms.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
