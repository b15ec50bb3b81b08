// A small static file server for a generated site (and extra pages), for the browser tests and
// `scripts/dev.sh`. Unknown paths get the site's 200.html (an SPA fallback) when it has one.
//
//   const site = await startStaticSite({ port: 0 });   // start first, to learn the origin
//   site.setRoot(dir); site.addPage('/evil.html', html);
//   CLI: node scripts/static-site.mjs --dir examples/nuxt-static/.output/public --port 3000

import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

export async function startStaticSite({ port = 0, host = '127.0.0.1', root = null } = {}) {
  let dir = root && path.resolve(root);
  const pages = new Map();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (pages.has(url.pathname)) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(pages.get(url.pathname));
      return;
    }
    if (!dir) {
      res.writeHead(503).end('no site yet');
      return;
    }
    let rel;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400).end('bad path');
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.join(dir, path.normalize(rel));
    if (!file.startsWith(dir + path.sep)) {
      res.writeHead(400).end('bad path');
      return;
    }
    const send = async (f, status = 200) => {
      const body = await readFile(f);
      res.writeHead(status, { 'content-type': TYPES[path.extname(f)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      if ((await stat(file)).isFile()) return await send(file);
    } catch {
      // fall through
    }
    try {
      await send(path.join(dir, '200.html'));
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  return {
    port: actual,
    setRoot: (d) => {
      dir = path.resolve(d);
    },
    addPage: (p, html) => pages.set(p, html),
    close: () => new Promise((r) => server.close(r)),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const site = await startStaticSite({ port: Number(opt('port') ?? 3000), root: opt('dir') ?? '.' });
  console.log(`static site listening on http://localhost:${site.port}`);
  const stop = () => site.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
