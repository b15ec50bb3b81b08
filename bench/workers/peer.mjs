// What a Workers user would write instead of Gatehouse: Hono routing, an EdDSA access token
// verified with jose (WebCrypto Ed25519) on every request, no cache, then the request forwarded
// upstream without its Authorization header. Bundled with esbuild by bench/workerd.mjs.
import { Hono } from 'hono';
import { importJWK, jwtVerify } from 'jose';

let key; // a promise of the CryptoKey, imported on the first request (not at global scope)

const app = new Hono();

app.all('*', async (c) => {
  const auth = c.req.header('authorization') ?? '';
  if (!auth.startsWith('Bearer ')) return c.json({ error: 'unauthorized' }, 401);
  key ??= importJWK(JSON.parse(c.env.PEER_PUBLIC_JWK), 'EdDSA');
  try {
    await jwtVerify(auth.slice(7), await key, {
      algorithms: ['EdDSA'],
      issuer: c.env.PEER_ISSUER,
      audience: c.env.PEER_ISSUER,
    });
  } catch {
    return c.json({ error: 'unauthorized' }, 401);
  }
  const u = new URL(c.req.url);
  const headers = new Headers(c.req.raw.headers);
  headers.delete('authorization');
  return fetch(c.env.UP + u.pathname + u.search, { method: c.req.method, headers });
});

export default app;
