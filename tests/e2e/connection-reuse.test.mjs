// A refused body (413) leaves the HTTP/1.1 connection usable for the client's next request.
//
// A keep-alive client sends its next request on the same connection as soon as it has the
// answer. If the worker answered before the whole body had arrived, the runtime closes the
// connection after the answer (without `Connection: close`, which a worker cannot send), and
// that next request fails with ECONNRESET or EPIPE — sometimes, depending on whether the client
// saw the close first. The worker reads the rest of a refused body (up to 1 MiB) first.
//
// These tests use node:http with one keep-alive socket and count the sockets: a closed
// connection shows as a second socket or a failed request every time, not only when a race is
// lost.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, openVars, uniqueEmail } from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

/** A keep-alive client with at most one connection that counts the connections it opened. */
function keepAliveClient(base) {
  const { hostname, port } = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  const sockets = new Set();
  /**
   * One request. `body` is a Buffer (sent with Content-Length) or an array of Buffers (written
   * one by one without a length: chunked). `expectContinue` sends `Expect: 100-continue` and
   * the body only on `100 Continue`. Resolves { status, headers, text, reused }.
   */
  function send(method, path, { body, headers = {}, expectContinue = false } = {}) {
    return new Promise((resolve, reject) => {
      const h = { ...headers };
      if (Buffer.isBuffer(body)) h['content-length'] = String(body.length);
      if (expectContinue) h.expect = '100-continue';
      const req = http.request({ agent, hostname, port, method, path, headers: h });
      req.on('socket', (s) => sockets.add(s));
      req.on('error', (err) => reject(new Error(`${method} ${path}: ${err.code ?? ''} ${err.message}`)));
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
            reused: req.reusedSocket,
          }),
        );
        res.on('error', reject);
      });
      const write = () => {
        if (Buffer.isBuffer(body)) req.end(body);
        else if (Array.isArray(body)) {
          for (const part of body) req.write(part);
          req.end();
        } else req.end();
      };
      if (expectContinue) {
        req.on('continue', write);
        req.flushHeaders();
      } else {
        write();
      }
    });
  }
  return { send, sockets, close: () => agent.destroy() };
}

const json = { 'content-type': 'application/json' };

/** A JSON login body of about `size` bytes. */
function loginBody(size, email = 'a@b.c') {
  const head = `{"email":${JSON.stringify(email)},"password":${JSON.stringify(PASSWORD)},"padding":"`;
  return Buffer.from(`${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`);
}

/** `body` cut into 8 KiB pieces, sent chunked. */
const pieces = (body) => Array.from({ length: Math.ceil(body.length / 8192) }, (_, i) => body.subarray(i * 8192, (i + 1) * 8192));

describe('connection reuse after a refused body', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
  });
  after(() => w?.stop());

  test('413s with and without Content-Length, then more requests: one connection throughout', async () => {
    const c = keepAliveClient(w.url);
    try {
      const big = loginBody(70 * 1024);
      for (let round = 0; round < 20; round += 1) {
        // Unknown accounts, a new one each round (failed logins are limited per account).
        const fits = loginBody(60 * 1024, uniqueEmail());
        const steps = [
          ['413, Content-Length', () => c.send('POST', '/auth/login', { body: big, headers: json }), 413],
          ['413, chunked', () => c.send('POST', '/auth/login', { body: pieces(big), headers: json }), 413],
          ['60 KiB, chunked', () => c.send('POST', '/auth/login', { body: pieces(fits), headers: json }), 401],
          ['healthz', () => c.send('GET', '/healthz'), 200],
        ];
        for (const [name, run, status] of steps) {
          const res = await run().catch((err) => {
            throw new Error(`round ${round}, ${name}: ${err.message}`);
          });
          assert.equal(res.status, status, `round ${round}, ${name}: ${res.status} ${res.text}`);
          if (status === 413) assert.match(res.text, /payload_too_large/);
          assert.notEqual(res.headers.connection, 'close', `round ${round}, ${name}: Connection: close`);
          assert.equal(c.sockets.size, 1, `round ${round}, ${name}: a new connection was opened`);
        }
      }
    } finally {
      c.close();
    }
  });

  test('a client that waits for 100 Continue gets the 413 at once', { timeout: 10_000 }, async () => {
    const c = keepAliveClient(w.url);
    try {
      // The body is never sent: the answer must not wait for it.
      const res = await c.send('POST', '/auth/login', {
        body: loginBody(70 * 1024),
        headers: json,
        expectContinue: true,
      });
      assert.equal(res.status, 413, res.text);
    } finally {
      c.close();
    }
  });
});

describe('connection reuse with MAX_BODY_BYTES', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { MAX_BODY_BYTES: '2048' }) });
  });
  after(() => w?.stop());

  test('bodies well over a small limit are read to their end: one connection throughout', async () => {
    const c = keepAliveClient(w.url);
    try {
      for (const size of [3 * 1024, 100 * 1024, 900 * 1024]) {
        const body = loginBody(size);
        for (const [how, payload] of [['Content-Length', body], ['chunked', pieces(body)]]) {
          const res = await c.send('POST', '/auth/login', { body: payload, headers: json });
          assert.equal(res.status, 413, `${size} B, ${how}: ${res.status} ${res.text}`);
          const next = await c.send('GET', '/healthz');
          assert.equal(next.status, 200, `after ${size} B, ${how}`);
          assert.equal(c.sockets.size, 1, `${size} B, ${how}: a new connection was opened`);
        }
      }
    } finally {
      c.close();
    }
  });
});
