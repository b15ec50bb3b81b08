// A software WebAuthn authenticator for the end-to-end tests, built on node:crypto: P-256
// (ES256) and Ed25519 (EdDSA) keys, CBOR encoded by hand (the few types WebAuthn uses), and
// every field a test may want to get wrong: origin, RP ID, flags, counter, user handle,
// attestation format.

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (data) => createHash('sha256').update(data).digest();

function head(major, n) {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/**
 * CBOR (RFC 8949) of integers, byte strings (Buffer/Uint8Array), text, arrays and maps (a
 * `Map` keeps its key order and may have integer keys; a plain object has text keys).
 */
export function cbor(value) {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error('integers only');
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cbor)]);
  const entries = value instanceof Map ? [...value] : Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

/** An authenticator holding one credential (a resident key) of algorithm `alg` (-7 or -8). */
export class SoftAuthenticator {
  constructor({ alg = -7 } = {}) {
    this.alg = alg;
    const pair = alg === -7 ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    this.privateKey = pair.privateKey;
    this.publicJwk = pair.publicKey.export({ format: 'jwk' });
    this.credentialId = randomBytes(16);
    this.counter = 0;
    this.userHandle = undefined;
  }

  get id() {
    return b64u(this.credentialId);
  }

  /** The credential's COSE_Key; `alg` and `kty` may be overridden to make an unsupported key. */
  coseKey() {
    const x = Buffer.from(this.publicJwk.x, 'base64url');
    if (this.alg === -7) {
      const y = Buffer.from(this.publicJwk.y, 'base64url');
      return cbor(new Map([[1, 2], [3, -7], [-1, 1], [-2, x], [-3, y]]));
    }
    return cbor(new Map([[1, 1], [3, -8], [-1, 6], [-2, x]]));
  }

  sign(data) {
    return this.alg === -7 ? sign('sha256', data, this.privateKey) : sign(null, data, this.privateKey);
  }

  authData({ rpId, flags, counter, attested }) {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter >>> 0);
    const parts = [sha256(rpId), Buffer.from([flags | (attested ? FLAG_AT : 0)]), count];
    if (attested) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(this.credentialId.length);
      parts.push(Buffer.alloc(16), len, this.credentialId, attested);
    }
    return Buffer.concat(parts);
  }

  static clientData(type, challenge, origin, extra = {}) {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false, ...extra }));
  }

  /**
   * Answers creation `options` (the server's `publicKey`) as `PublicKeyCredential.toJSON()`
   * does. Options: origin, rpId, flags, counter, fmt (`none`, `packed` self-attestation, or any
   * other name with an empty statement), coseKey (bytes), type.
   */
  register(options, { origin, rpId = options.rp.id, flags = FLAG_UP | FLAG_UV, counter = this.counter, fmt = 'none', coseKey, type = 'webauthn.create' } = {}) {
    this.userHandle = options.user.id;
    const cdj = SoftAuthenticator.clientData(type, options.challenge, origin);
    const authData = this.authData({ rpId, flags, counter, attested: coseKey ?? this.coseKey() });
    let attStmt = {};
    if (fmt === 'packed') {
      attStmt = { alg: this.alg, sig: this.sign(Buffer.concat([authData, sha256(cdj)])) };
    }
    const attestationObject = cbor({ fmt, attStmt, authData });
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(cdj),
        attestationObject: b64u(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
    };
  }

  /**
   * Answers request `options` as `PublicKeyCredential.toJSON()` does, the counter moving on by
   * one unless `counter` is given. Options: origin, rpId, flags, counter, userHandle (default:
   * the one registered), type.
   */
  login(options, { origin, rpId = options.rpId, flags = FLAG_UP | FLAG_UV, counter, userHandle = this.userHandle, type = 'webauthn.get' } = {}) {
    if (counter === undefined) {
      this.counter += 1;
      counter = this.counter;
    }
    const cdj = SoftAuthenticator.clientData(type, options.challenge, origin);
    const authData = this.authData({ rpId, flags, counter });
    const signature = this.sign(Buffer.concat([authData, sha256(cdj)]));
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(cdj),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        userHandle: userHandle ?? null,
      },
      clientExtensionResults: {},
    };
  }
}

/** An RS256 COSE key (kty RSA): well-formed, but an algorithm Gatehouse does not accept. */
export function rsaCoseKey() {
  return cbor(new Map([[1, 3], [3, -257], [-1, randomBytes(256)], [-2, Buffer.from([1, 0, 1])]]));
}
