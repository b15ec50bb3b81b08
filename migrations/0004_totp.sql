-- Gatehouse schema, version 4: the TOTP second factor and its recovery codes. See
-- docs/storage-schema.md and docs/http-api.md.

-- One row per user who started or finished a TOTP enrollment. Secrets are stored only sealed:
-- "v1." + base64url(nonce || AES-256-GCM ciphertext || tag) under MFA_ENCRYPTION_KEY, with the
-- user's id as associated data.
CREATE TABLE mfa_totp (
  user_id        TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  secret_sealed  TEXT,                              -- the enrolled secret; NULL: none yet
  last_step      INTEGER NOT NULL DEFAULT 0,        -- newest accepted time step (Unix s / 30)
  enrolled_at    INTEGER,
  enrollment_id  TEXT,                              -- random id of the confirmation that won
  pending_sealed TEXT,                              -- a started, unconfirmed enrollment's secret
  pending_at     INTEGER
) STRICT;

-- Unused recovery codes, stored only as hex HMAC-SHA256 (key derived from MFA_ENCRYPTION_KEY)
-- of the user's id and the code; a used code is deleted.
CREATE TABLE mfa_recovery_codes (
  code_hash  TEXT PRIMARY KEY NOT NULL,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes (user_id);
