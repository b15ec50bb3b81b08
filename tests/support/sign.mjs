// Signs a request the way Gatehouse's proxy does (src/proxy/sign.rs), for tests of what sits
// behind it (the CMS hooks in examples/cms-hooks/) without a running worker.
//
//   const headers = signGatehouseRequest({ method: 'POST', target: '/api/content/item/posts?x=1',
//     body, secret, user: 'usr_1', roles: ['user'] });
//
// The covered components, in the order src/proxy/mod.rs signs them: "@method" "@path" "@query"
// "content-digest", the `forwarded` headers given (x-forwarded-for, x-forwarded-host,
// x-forwarded-proto: the proxy always sends the proto, so the default is
// { 'x-forwarded-proto': 'https' }; pass {} for none), "x-gatehouse-auth" "x-gatehouse-roles" and,
// for a signed-in caller, "x-gatehouse-user". Parameters: created, keyid="gatehouse",
// alg="hmac-sha256"; label `gatehouse`.
//
// Returns the headers Gatehouse adds, lower-case names: content-digest, the forwarded ones,
// x-gatehouse-auth, x-gatehouse-roles, x-gatehouse-user (signed-in only), signature-input and
// signature.

import { createHash, createHmac } from 'node:crypto';

export const FORWARDED_HEADERS = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'];

export function contentDigest(body) {
  return `sha-256=:${createHash('sha256').update(toBuffer(body)).digest('base64')}:`;
}

/**
 * @param {object} o
 * @param {string} o.method
 * @param {string} o.target  path and query as the CMS receives them, e.g. "/api/x?a=1"
 * @param {string|Buffer|Uint8Array} [o.body]
 * @param {string} o.secret
 * @param {string|null} [o.user]  null or absent: an anonymous caller
 * @param {string[]} [o.roles]
 * @param {string} [o.auth]  "access_token" (default when signed in), "api_key" or "anonymous"
 * @param {Record<string,string>} [o.forwarded]  x-forwarded-* values to sign (default: proto https)
 * @param {number} [o.created]  Unix seconds (default now)
 */
export function signGatehouseRequest({ method, target, body = '', secret, user = null, roles = [], auth, forwarded = { 'x-forwarded-proto': 'https' }, created }) {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  const fields = [['content-digest', contentDigest(body)]];
  for (const name of FORWARDED_HEADERS) {
    if (forwarded[name] !== undefined) fields.push([name, forwarded[name]]);
  }
  fields.push(['x-gatehouse-auth', auth ?? (user ? 'access_token' : 'anonymous')]);
  fields.push(['x-gatehouse-roles', user ? roles.join(',') : '']);
  if (user) fields.push(['x-gatehouse-user', user]);
  const components = ['"@method" "@path" "@query"', ...fields.map(([name]) => `"${name}"`)].join(' ');
  const params = `(${components});created=${created ?? Math.floor(Date.now() / 1000)};keyid="gatehouse";alg="hmac-sha256"`;
  const base = [
    `"@method": ${method.toUpperCase()}`,
    `"@path": ${path}`,
    `"@query": ?${query}`,
    ...fields.map(([name, value]) => `"${name}": ${value.trim()}`),
    `"@signature-params": ${params}`,
  ].join('\n');
  const signature = createHmac('sha256', secret).update(base).digest('base64');
  return {
    ...Object.fromEntries(fields),
    'signature-input': `gatehouse=${params}`,
    signature: `gatehouse=:${signature}:`,
  };
}

function toBuffer(body) {
  if (body === undefined || body === null) return Buffer.alloc(0);
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
}
