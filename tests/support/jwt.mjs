// JWT helpers built on Node's crypto only: decode, sign (EdDSA, HS256, none), verify with WebCrypto.

import assert from 'node:assert/strict';
import { createHmac, sign, webcrypto } from 'node:crypto';

export function encodeSegment(obj) {
  return Buffer.from(JSON.stringify(obj), 'utf8').toString('base64url');
}

export function decodeSegment(seg) {
  return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
}

/** Splits and decodes a compact JWS: { header, payload, signature, signingInput, parts }. */
export function decodeJwt(token) {
  assert.equal(typeof token, 'string', 'token is not a string');
  const parts = token.split('.');
  assert.equal(parts.length, 3, `not a compact JWS: ${token}`);
  for (const p of parts) assert.match(p, /^[A-Za-z0-9_-]*$/, `segment is not base64url: ${p}`);
  return {
    header: decodeSegment(parts[0]),
    payload: decodeSegment(parts[1]),
    signature: Buffer.from(parts[2], 'base64url'),
    signingInput: `${parts[0]}.${parts[1]}`,
    parts,
  };
}

/** Signs header + payload with an Ed25519 KeyObject. */
export function signEdDSA(header, payload, privateKey) {
  const input = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  const sig = sign(null, Buffer.from(input, 'ascii'), privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

/** Signs header + payload with HMAC-SHA256 under `key` (Buffer or string). */
export function signHS256(header, payload, key) {
  const input = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  const sig = createHmac('sha256', key).update(input).digest();
  return `${input}.${sig.toString('base64url')}`;
}

/** An unsigned token (`alg: none`, empty signature). */
export function unsigned(header, payload) {
  return `${encodeSegment(header)}.${encodeSegment(payload)}.`;
}

/** Verifies a token against a JWK with WebCrypto, independently of the worker. */
export async function verifyWithJwk(token, jwk) {
  const { signingInput, signature } = decodeJwt(token);
  const key = await webcrypto.subtle.importKey('jwk', jwk, { name: 'Ed25519' }, false, ['verify']);
  return webcrypto.subtle.verify('Ed25519', key, signature, Buffer.from(signingInput, 'ascii'));
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
