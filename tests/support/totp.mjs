// An independent TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) on Node's crypto, for the
// end-to-end tests of Gatehouse's second factor; checked against RFC 6238's vectors in
// tests/e2e/totp.test.mjs.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

/** RFC 4648 base32 (no padding) to bytes. */
export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text) {
    const i = alphabet.indexOf(ch);
    assert.ok(i >= 0, `not base32: ${text}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (HMAC-SHA1, 6 digits) of time step `step`. */
export function totp(secretBase32, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secretBase32)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const n = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(n % 1_000_000).padStart(6, '0');
}

export const stepNow = () => Math.floor(Date.now() / 30_000);

/** A six-digit code that is none of the secret's codes around now. */
export function wrongCode(secret) {
  const s = stepNow();
  const taken = new Set([-2, -1, 0, 1, 2].map((d) => totp(secret, s + d)));
  return ['111111', '222222', '333333', '444444', '555555', '666666'].find((c) => !taken.has(c));
}
