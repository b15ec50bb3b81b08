// A real OpenID provider for the end-to-end tests: oidc-provider (OpenID Certified), installed by
// `bash scripts/setup.sh` into $GATEHOUSE_OIDC ($GATEHOUSE_TOOLS/oidc-<lockfile hash>), run in
// this test process on 127.0.0.1 with the test's keys and clients. Users sign in through its
// development login and consent pages, driven by fetch (authorization code flow with PKCE), and
// the ID token it issues is what the test presents to Gatehouse.

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REDIRECT_URI = 'https://site.example/signed-in';

/** The install directory, computed as scripts/env.sh does (GATEHOUSE_OIDC wins if set). */
export function oidcInstallDir() {
  if (process.env.GATEHOUSE_OIDC) return process.env.GATEHOUSE_OIDC;
  const tools = process.env.GATEHOUSE_TOOLS || path.join(homedir(), '.cache', 'gatehouse', 'tools');
  const lock = readFileSync(path.join(ROOT, 'tests', 'oidc', 'package-lock.json'));
  return path.join(tools, `oidc-${createHash('sha256').update(lock).digest('hex').slice(0, 12)}`);
}

async function loadProvider() {
  const entry = path.join(oidcInstallDir(), 'node_modules', 'oidc-provider', 'lib', 'index.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run bash scripts/setup.sh`);
  return (await import(pathToFileURL(entry).href)).default;
}

/**
 * One HTTP request on a connection of its own (fetch would reuse a pooled connection to a
 * provider that was stopped and started again on the same port). Resolves to `{ status,
 * headers: Headers, text }`.
 */
function httpRequest(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: Object.fromEntries(headers), agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const out = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        resolve({ status: res.statusCode, headers: out, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A signing key pair: `{ kid, alg, privateKey, publicKey, privateJwk, publicJwk }`. */
export function signingKey(alg, kid) {
  const pair = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('ed25519');
  const extra = { kid, alg, use: 'sig' };
  return {
    kid,
    alg,
    ...pair,
    privateJwk: { ...pair.privateKey.export({ format: 'jwk' }), ...extra },
    publicJwk: { ...pair.publicKey.export({ format: 'jwk' }), ...extra },
  };
}

/**
 * Starts the provider on `port` (0: a free one) with `keys` (from `signingKey`) and one
 * confidential client per entry of `clients` (`{ id, alg }`: the ID token's algorithm). Every
 * JWKS answer carries `Cache-Control: <cacheControl>`. Returns `{ issuer, port, jwksUrl,
 * jwksRequests(), signIn(clientId, login), stop() }`.
 */
export async function startProvider({ port = 0, keys, clients, cacheControl = 'public, max-age=600' }) {
  const Provider = await loadProvider();
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actualPort = server.address().port;
  const issuer = `http://127.0.0.1:${actualPort}`;
  const secrets = Object.fromEntries(clients.map((c) => [c.id, randomBytes(24).toString('hex')]));
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.id,
      client_secret: secrets[c.id],
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: c.alg,
    })),
    jwks: { keys: keys.map((k) => k.privateJwk) },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@example.com`, email_verified: true, groups: ['cms-editors'] }),
    }),
    claims: { openid: ['sub', 'groups'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    ttl: { IdToken: 3600, AccessToken: 3600, Session: 3600, Grant: 3600, Interaction: 600, AuthorizationCode: 60 },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider:', err));
  let jwksRequests = 0;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/jwks') {
      jwksRequests += 1;
      ctx.set('cache-control', cacheControl);
    }
  });
  server.on('request', provider.callback());

  /** Signs `login` in at the provider for `clientId`; resolves to the ID token it issued. */
  async function signIn(clientId, login) {
    const jar = new Map();
    const send = async (url, init = {}) => {
      const headers = new Headers(init.headers);
      if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
      let body;
      if (init.body) {
        body = init.body.toString();
        headers.set('content-type', 'application/x-www-form-urlencoded');
      }
      const res = await httpRequest(new URL(url, issuer), { method: init.method, headers, body });
      for (const line of res.headers.getSetCookie()) {
        const pair = line.split(';', 1)[0];
        const eq = pair.indexOf('=');
        const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1)];
        if (!value || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
        else jar.set(name, value);
      }
      return res;
    };
    const verifier = randomBytes(32).toString('base64url');
    const query = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      scope: 'openid email',
      redirect_uri: REDIRECT_URI,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state: randomBytes(8).toString('hex'),
      nonce: randomBytes(8).toString('hex'),
    });
    let res = await send(`/auth?${query}`);
    let code;
    for (let step = 0; step < 10 && !code; step++) {
      const location = res.headers.get('location');
      if (!location) throw new Error(`the provider answered ${res.status} without a redirect: ${res.text}`);
      const target = new URL(location, issuer);
      if (location.startsWith(REDIRECT_URI)) {
        code = target.searchParams.get('code');
        if (!code) throw new Error(`no code: ${location}`);
        break;
      }
      if (target.pathname.startsWith('/interaction/')) {
        const page = (await send(target)).text;
        const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1];
        const form = new URLSearchParams({ prompt });
        if (prompt === 'login') {
          form.set('login', login);
          form.set('password', 'any');
        }
        res = await send(target, { method: 'POST', body: form });
      } else {
        res = await send(target);
      }
    }
    if (!code) throw new Error('the sign-in did not end at the redirect URI');
    const tokenRes = await httpRequest(`${issuer}/token`, {
      method: 'POST',
      headers: new Headers({
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${secrets[clientId]}`).toString('base64')}`,
      }),
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }).toString(),
    });
    const body = JSON.parse(tokenRes.text);
    if (!body.id_token) throw new Error(`no id_token: ${JSON.stringify(body)}`);
    return body.id_token;
  }

  return {
    issuer,
    port: actualPort,
    jwksUrl: `${issuer}/jwks`,
    jwksRequests: () => jwksRequests,
    signIn,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(resolve);
    }),
  };
}
