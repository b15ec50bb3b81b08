-- Gatehouse schema, version 5: passkeys (WebAuthn). See docs/storage-schema.md and docs/passkeys.md.

-- A registered passkey: its credential id and public key (never a secret), its counter.
CREATE TABLE passkeys (
  id              TEXT PRIMARY KEY NOT NULL,        -- "pk_" + 26 base32 characters
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  credential_id   TEXT NOT NULL UNIQUE,             -- base64url of the credential id
  public_key      TEXT NOT NULL,                    -- base64url of the COSE_Key
  algorithm       INTEGER NOT NULL,                 -- COSE: -7 ES256, -8 EdDSA
  sign_count      INTEGER NOT NULL,                 -- the authenticator's counter, last seen
  name            TEXT NOT NULL,                    -- the user's label
  aaguid          TEXT NOT NULL,                    -- hex; all zero when not told
  backup_eligible INTEGER NOT NULL DEFAULT 0,
  backed_up       INTEGER NOT NULL DEFAULT 0,
  transports      TEXT NOT NULL DEFAULT '[]',       -- JSON array, as the browser reported
  created_at      INTEGER NOT NULL,
  last_used_at    INTEGER,
  flagged_at      INTEGER                           -- set on a counter regression: refused since
) STRICT;
CREATE INDEX passkeys_user ON passkeys (user_id);

-- One row per open ceremony; used up (deleted) by the one verification that presents it.
CREATE TABLE webauthn_challenges (
  challenge_hash TEXT PRIMARY KEY NOT NULL,         -- hex SHA-256 of the challenge
  ceremony       TEXT NOT NULL,                     -- register | login
  user_id        TEXT,                              -- register: the signed-in user
  expires_at     INTEGER NOT NULL                   -- Unix ms, at most 5 minutes after issue
) STRICT;
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
