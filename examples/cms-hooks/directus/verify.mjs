// Verifies Gatehouse's identity signature on a proxied request (RFC 9421, hmac-sha256, with an
// RFC 9530 Content-Digest of the body). Dependency-free; runs in Node 18+, Deno, Bun and Workers.
//
//   const result = await verifyGatehouseRequest({ method, url, headers, body, secret });
//   if (!result.ok) return new Response('forbidden', { status: 403 });
//   result.user   // "usr_…" or null for an anonymous caller
//   result.roles  // ["user", …]
//   result.auth   // "access_token" | "api_key" | "external_token" | "anonymous"
//   result.issuer // for "external_token" only: the TRUSTED_ISSUERS name that vouches for the user
//
// `headers` is a Headers object or a plain object with lower-case names; `body` the raw request
// body (Uint8Array, ArrayBuffer or string); `secret` the UPSTREAM_SIGNING_SECRET. It never
// throws: missing or malformed input is a failure like a wrong signature.

const enc = new TextEncoder();

function b64(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function header(headers, name) {
  const value = typeof headers.get === 'function' ? headers.get(name) : headers[name];
  return typeof value === 'string' ? value : null;
}

function timingSafeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const fail = (reason) => ({ ok: false, reason });

export async function verifyGatehouseRequest(request) {
  try {
    return await verify(request ?? {});
  } catch (err) {
    return fail(`malformed request: ${err?.message ?? err}`);
  }
}

async function verify({ method, url, headers, body, secret, maxAgeSeconds = 300, now = Date.now() }) {
  if (typeof secret !== 'string' || secret.length === 0) return fail('no secret');
  if (typeof method !== 'string' || typeof url !== 'string' || !headers || typeof headers !== 'object') return fail('malformed request');
  const input = header(headers, 'signature-input');
  const signature = header(headers, 'signature');
  if (!input || !signature) return fail('no signature');
  const m = /^gatehouse=\(([^)]*)\)(.*)$/.exec(input);
  const s = /^gatehouse=:([A-Za-z0-9+/=]+):$/.exec(signature);
  if (!m || !s) return fail('malformed signature headers');
  const components = m[1].split(' ').filter(Boolean).map((c) => /^"([^"\\]+)"$/.exec(c)?.[1]);
  if (components.some((c) => c === undefined)) return fail('malformed signature-input');
  const params = m[2];
  const created = Number(/;created=(\d+)/.exec(params)?.[1]);
  if (!/;alg="hmac-sha256"/.test(params) || !/;keyid="gatehouse"/.test(params)) return fail('unexpected parameters');
  if (!Number.isFinite(created) || Math.abs(now / 1000 - created) > maxAgeSeconds) return fail('stale or missing created');
  for (const required of ['@method', '@path', '@query', 'content-digest', 'x-gatehouse-auth', 'x-gatehouse-roles']) {
    if (!components.includes(required)) return fail(`${required} is not covered`);
  }

  // The body must match the signed digest.
  const bytes = typeof body === 'string' ? enc.encode(body) : new Uint8Array(body ?? new Uint8Array());
  const digest = `sha-256=:${b64(await crypto.subtle.digest('SHA-256', bytes))}:`;
  if (header(headers, 'content-digest') !== digest) return fail('content-digest does not match the body');

  let target;
  try {
    target = new URL(url);
  } catch {
    return fail('malformed url');
  }
  const lines = [];
  for (const c of components) {
    let value;
    if (c === '@method') value = method.toUpperCase();
    else if (c === '@path') value = target.pathname;
    else if (c === '@query') value = target.search || '?';
    else value = header(headers, c);
    if (value === null) return fail(`missing ${c}`);
    lines.push(`"${c}": ${value.trim()}`);
  }
  lines.push(`"@signature-params": (${m[1]})${params}`);
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const expected = b64(await crypto.subtle.sign('HMAC', key, enc.encode(lines.join('\n'))));
  if (!timingSafeEqual(expected, s[1])) return fail('bad signature');

  const auth = header(headers, 'x-gatehouse-auth');
  const user = components.includes('x-gatehouse-user') ? header(headers, 'x-gatehouse-user') : null;
  if (auth !== 'anonymous' && !user) return fail('an authenticated caller without x-gatehouse-user');
  const roles = (header(headers, 'x-gatehouse-roles') || '').split(',').filter(Boolean);
  // A trusted external issuer's caller (auth "external_token"): which issuer vouches for them.
  const issuer = components.includes('x-gatehouse-issuer') ? header(headers, 'x-gatehouse-issuer') : null;
  if (auth === 'external_token' && !issuer) return fail('an external caller without x-gatehouse-issuer');
  return issuer ? { ok: true, auth, user, issuer, roles } : { ok: true, auth, user, roles };
}
