// Every error code of the HTTP contract must be asserted by at least one end-to-end test.
//
// Tests assert codes with expectError(res, status, 'code') (tests/support/http.mjs). This file
// reads the other test files and fails if a code from docs/http-api.md, or from the list below,
// never appears as the literal code argument of an expectError call.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');

const REQUIRED = [
  'bad_request',
  'invalid_json',
  'unsupported_media_type',
  'payload_too_large',
  'not_found',
  'method_not_allowed',
  'no_auth',
  'invalid_token',
  'expired_token',
  'invalid_credentials',
  'registration_closed',
  'email_taken',
  'weak_password',
  'invalid_refresh_token',
  'refresh_token_reused',
  'insufficient_role',
  'invalid_api_key',
  'invalid_session',
  'scope_violation',
  'auth_rate_limited',
  'misconfigured',
  'internal',
  'unavailable',
  'invalid_path',
  'insufficient_role',
  'csrf_validation_failed',
  'upstream_unavailable',
  'upstream_timeout',
  'query_not_allowed',
  'body_not_allowed',
  'not_owner',
  'mfa_required',
  'invalid_otp',
  'mfa_not_enrolled',
  'mfa_unavailable',
  'untrusted_issuer',
  'issuer_unavailable',
  'passkeys_disabled',
  'webauthn_challenge_invalid',
  'webauthn_challenge_expired',
  'webauthn_origin_mismatch',
  'webauthn_rp_id_mismatch',
  'webauthn_user_not_verified',
  'webauthn_algorithm_unsupported',
  'webauthn_attestation_unsupported',
  'webauthn_signature_invalid',
  'passkey_unknown',
  'passkey_user_mismatch',
  'passkey_counter_regression',
  'passkey_exists',
];

/** Codes the contract names: a status followed by a `code`, and "code": "…" in examples. */
function documentedCodes() {
  const doc = readFileSync(path.join(ROOT, 'docs', 'http-api.md'), 'utf8');
  const codes = new Set();
  for (const m of doc.matchAll(/\b[45]\d\d\s+`([a-z][a-z_]*)`/g)) codes.add(m[1]);
  for (const m of doc.matchAll(/"code"\s*:\s*"([a-z][a-z_]*)"/g)) codes.add(m[1]);
  // A table of codes: | `code` | 409 | … or | 409 | `code` | …
  for (const m of doc.matchAll(/\|\s*`([a-z][a-z_]*)`\s*\|\s*[45]\d\d\b/g)) codes.add(m[1]);
  for (const m of doc.matchAll(/\|\s*[45]\d\d\s*\|\s*`([a-z][a-z_]*)`/g)) codes.add(m[1]);
  return codes;
}

/** Codes asserted by the test files: the third argument of expectError(…, status, 'code'). */
function assertedCodes() {
  const files = readdirSync(HERE).filter((f) => f.endsWith('.test.mjs') && f !== path.basename(fileURLToPath(import.meta.url)));
  const codes = new Map();
  for (const f of files) {
    const src = readFileSync(path.join(HERE, f), 'utf8');
    for (const m of src.matchAll(/expectError\(\s*[\s\S]*?,\s*([45]\d\d)\s*,\s*'([a-z_]+)'/g)) {
      const key = m[2];
      if (!codes.has(key)) codes.set(key, new Set());
      codes.get(key).add(`${f} (${m[1]})`);
    }
  }
  return codes;
}

test('the documented codes are the required list (update both together)', () => {
  const doc = documentedCodes();
  const missingFromList = [...doc].filter((c) => !REQUIRED.includes(c));
  assert.deepEqual(missingFromList, [], 'docs/http-api.md names codes this check does not know');
});

test('every error code is asserted by at least one test', () => {
  const asserted = assertedCodes();
  const wanted = new Set([...REQUIRED, ...documentedCodes()]);
  const never = [...wanted].filter((c) => !asserted.has(c));
  assert.deepEqual(never, [], `codes never asserted with expectError: ${never.join(', ')}`);
});

test('no test asserts a code the contract does not know', () => {
  const asserted = assertedCodes();
  const known = new Set([...REQUIRED, ...documentedCodes()]);
  const unknown = [...asserted.keys()].filter((c) => !known.has(c));
  assert.deepEqual(unknown, []);
});
