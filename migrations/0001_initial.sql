-- Gatehouse schema, version 1. Times are Unix milliseconds. See docs/storage-schema.md.

CREATE TABLE users (
  id            TEXT PRIMARY KEY NOT NULL,          -- "usr_" + 26 base32 characters
  email         TEXT NOT NULL UNIQUE,               -- trimmed, lower-cased
  name          TEXT,
  password_hash TEXT NOT NULL,                      -- PHC string: $pbkdf2-sha256$i=…,l=32$salt$hash
  roles         TEXT NOT NULL DEFAULT '[]',         -- JSON array of role names
  disabled      INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) STRICT;

-- One family per login: every refresh token descended from that login's first token.
CREATE TABLE refresh_families (
  id            TEXT PRIMARY KEY NOT NULL,          -- "fam_" + 26 base32 characters
  user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at    INTEGER NOT NULL,
  last_used_at  INTEGER NOT NULL,                   -- idle timeout counts from here
  expires_at    INTEGER NOT NULL,                   -- absolute end of the family
  revoked_at    INTEGER,
  revoke_reason TEXT,                               -- logout | reuse | password_change | admin
  user_agent    TEXT
) STRICT;
CREATE INDEX refresh_families_user ON refresh_families (user_id);

-- Refresh tokens are stored only as SHA-256 hashes. A token is live while rotated_at is NULL.
CREATE TABLE refresh_tokens (
  token_hash       TEXT PRIMARY KEY NOT NULL,       -- hex SHA-256 of the opaque token
  family_id        TEXT NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
  generation       INTEGER NOT NULL,                -- 0 for the login's token, +1 per rotation
  created_at       INTEGER NOT NULL,
  rotated_at       INTEGER,                         -- set once, by the one rotation that wins
  successor_hash   TEXT,                            -- hex SHA-256 of the successor
  successor_sealed TEXT                             -- successor XOR HMAC-SHA256(this token, label), hex
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Security events. Never holds a secret.
CREATE TABLE audit_events (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  at              INTEGER NOT NULL,
  kind            TEXT NOT NULL,                    -- login_succeeded, refresh_token_reused, …
  actor_user_id   TEXT,
  subject_user_id TEXT,
  family_id       TEXT,
  ip              TEXT,
  user_agent      TEXT,
  detail          TEXT                              -- JSON object, e.g. {"cause":"…"}
) STRICT;
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_subject ON audit_events (subject_user_id, at);
