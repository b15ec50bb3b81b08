// A real local HTTP server standing in for a CMS: it records every request it receives and
// answers according to the path's first segment after its base, so tests can ask for failures.
//
//   /…/status/404        answers 404 with a JSON body
//   /…/slow/<ms>         answers after <ms> milliseconds
//   /…/echo-secret       echoes the api-key and authorization it got in response headers
//   /…/redirect-here     answers 302 to …/followed on this server (following it would be recorded)
//   /…/big/<bytes>       answers <bytes> bytes of text
//   /…/drip/<name>       sends a first chunk at once and the rest only once the test calls
//                        release(name) (or after 60 s)
//   anything else        200 with { ok: true } and a few headers a CMS typically sends

import http from 'node:http';

export async function startUpstream() {
  const requests = [];
  const held = new Map(); // drip name → its release function
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://upstream.invalid');
    requests.push({ method: req.method, url: req.url, path: url.pathname, query: url.search, headers: req.headers, body });
    const base = {
      'content-type': 'application/json',
      'set-cookie': 'cms_session=abc; Path=/; HttpOnly',
      server: 'Apache/2.4.62 (Debian)',
      'x-powered-by': 'PHP/8.3.0',
      'access-control-allow-origin': '*',
      'access-control-allow-credentials': 'true',
      'cache-control': 'public, max-age=60',
      'x-cms-item-count': '3',
    };
    let m;
    if ((m = /\/status\/(\d{3})$/.exec(url.pathname))) {
      res.writeHead(Number(m[1]), base);
      return res.end(JSON.stringify({ error: `upstream says ${m[1]}` }));
    }
    if ((m = /\/slow\/(\d+)$/.exec(url.pathname))) {
      await new Promise((r) => setTimeout(r, Number(m[1])));
      res.writeHead(200, base);
      return res.end(JSON.stringify({ ok: true, slow: true }));
    }
    if (url.pathname.endsWith('/echo-secret')) {
      res.writeHead(200, {
        ...base,
        'x-echo-api-key': String(req.headers['api-key'] ?? ''),
        'x-echo-authorization': String(req.headers.authorization ?? ''),
        'x-debug-url': req.url,
      });
      return res.end(JSON.stringify({ ok: true }));
    }
    if (url.pathname.endsWith('/redirect-here')) {
      res.writeHead(302, { ...base, location: url.pathname.replace(/redirect-here$/, 'followed') });
      return res.end();
    }
    if ((m = /\/drip\/([\w-]+)$/.exec(url.pathname))) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk\n');
      await new Promise((r) => {
        const timer = setTimeout(r, 60_000);
        held.set(m[1], () => {
          clearTimeout(timer);
          r();
        });
      });
      held.delete(m[1]);
      return res.end('the rest\n');
    }
    if ((m = /\/big\/(\d+)$/.exec(url.pathname))) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('x'.repeat(Number(m[1])));
    }
    res.writeHead(200, base);
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ ok: true }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    last: () => requests[requests.length - 1],
    /** Lets the held `/drip/<name>` answer finish; false when no such answer is held. */
    release: (name) => {
      const r = held.get(name);
      r?.();
      return !!r;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

/**
 * Sends a request with a raw, unnormalized request target and headers fetch would refuse or
 * rewrite (a GET with a body, hop-by-hop headers); `body` is optional.
 */
export function rawRequest(baseUrl, method, target, headers = {}, body = undefined) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: target, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, body });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
