// The adapter's few calls into the runtime, each one boundary crossing: headers travel as one
// string of `name\nvalue\n` pairs (a header name or value never holds a line break: the
// runtime refuses one, and the Rust side checks what it sends). No decision is made here.

/** The headers of a request or response as `name\nvalue\n…` (names lower-case). */
export function headersFlat(headers) {
  let flat = '';
  for (const [name, value] of headers) flat += name + '\n' + value + '\n';
  return flat;
}

/** Headers from `name\nvalue\n…`. */
export function headersOf(flat) {
  const headers = new Headers();
  const parts = flat.split('\n');
  for (let i = 0; i + 1 < parts.length; i += 2) headers.append(parts[i], parts[i + 1]);
  return headers;
}

/** A response with these headers; `body` is bytes, a stream or null. */
export function respond(status, flat, body) {
  return new Response(body, { status, headers: headersOf(flat) });
}

/**
 * fetch() that follows no redirect and gives up when the answer's headers have not come within
 * `timeoutMs` (the body then streams on without a deadline). A timeout rejects with a
 * `TimeoutError`.
 */
export async function upstreamFetch(url, method, flat, body, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException('the upstream did not answer in time', 'TimeoutError')),
    timeoutMs,
  );
  try {
    return await fetch(url, {
      method,
      headers: headersOf(flat),
      body,
      redirect: 'manual',
      signal: controller.signal,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** The `name` of a thrown value (`TimeoutError`, `TypeError`…), or ''. */
export function errorName(err) {
  return (err && err.name) || '';
}

// WebCrypto's names for each accepted JWS algorithm: [importKey's, verify's].
const JWS = {
  RS256: [{ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, { name: 'RSASSA-PKCS1-v1_5' }],
  ES256: [{ name: 'ECDSA', namedCurve: 'P-256' }, { name: 'ECDSA', hash: 'SHA-256' }],
  EdDSA: [{ name: 'Ed25519' }, { name: 'Ed25519' }],
};

/** Whether `signature` over `data` verifies with the public JWK `jwkJson` for JWS `alg`. */
export async function jwsVerify(jwkJson, alg, signature, data) {
  // Copied out of wasm memory before the first await: a memory growth meanwhile would detach
  // the views wasm-bindgen hands in.
  signature = signature.slice();
  data = data.slice();
  const [importAlg, verifyAlg] = JWS[alg];
  const key = await crypto.subtle.importKey('jwk', JSON.parse(jwkJson), importAlg, false, ['verify']);
  return crypto.subtle.verify(verifyAlg, key, signature, data);
}

/** What the cache named `name` (the Workers Cache API) holds for `url`: a Response, or null. */
export async function cacheMatch(name, url) {
  const cache = await caches.open(name);
  return (await cache.match(url)) ?? null;
}

/**
 * Stores a 200 answer with the headers of `flat` and the bytes `body` for `url` there. The
 * answer is made (its bytes copied out of wasm memory) before the first await.
 */
export async function cachePut(name, url, flat, body) {
  const response = new Response(body.slice(), { status: 200, headers: headersOf(flat) });
  const cache = await caches.open(name);
  await cache.put(url, response);
}
