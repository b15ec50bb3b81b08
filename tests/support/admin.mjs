// Helpers for the admin, API-key, session and audit suites.

import { createHmac } from 'node:crypto';
import { expectStatus, loginUser, registerUser } from './http.mjs';

export const PEPPER = 'e2e-pepper-0123456789-abcdefghijklmnop';

/** HMAC-SHA256(pepper, key) in hex: what api_keys.key_hash must hold. */
export function keyHash(key, pepper = PEPPER) {
  return createHmac('sha256', pepper).update(key, 'utf8').digest('hex');
}

/** Registers a user, sets `roles` straight in D1 (as the CLI bootstrap does) and logs in again. */
export async function userWithRoles(w, c, roles) {
  const u = await registerUser(c);
  await w.db.prepare('UPDATE users SET roles = ?1 WHERE id = ?2').bind(JSON.stringify(roles), u.user.id).run();
  const again = await loginUser(c, u.email);
  return { ...u, id: u.user.id, access: again.access, refresh: again.refresh, firstRefresh: u.refresh };
}

/** Mints a key through the admin API; returns { key, api_key }. */
export async function mintKey(c, adminAccess, body) {
  const res = await c.post('/admin/api-keys', body, { bearer: adminAccess });
  expectStatus(res, 201);
  return res.body;
}
