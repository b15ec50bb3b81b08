-- Gatehouse schema, version 2: API keys and rate-limit counters. See docs/storage-schema.md.

-- API keys are stored only as HMAC-SHA256(API_KEY_PEPPER, key); the key itself is shown once.
CREATE TABLE api_keys (
  id            TEXT PRIMARY KEY NOT NULL,          -- "key_" + 26 base32 characters
  key_hash      TEXT NOT NULL UNIQUE,               -- hex HMAC-SHA256 of the whole "gk_…" key
  label         TEXT NOT NULL,
  owner_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_by    TEXT,                               -- user id of the minting admin; NULL: the CLI
  role          TEXT NOT NULL,                      -- the one role the key carries
  scopes        TEXT NOT NULL DEFAULT '[]',         -- JSON array of proxy route names
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER,                            -- NULL: never
  last_used_at  INTEGER,                            -- written at most once a minute
  revoked_at    INTEGER
) STRICT;
CREATE INDEX api_keys_owner ON api_keys (owner_user_id);

-- Fixed-window counters, one row per limited thing ("login_ip:203.0.113.9", …).
CREATE TABLE rate_limits (
  key          TEXT PRIMARY KEY NOT NULL,
  window_start INTEGER NOT NULL,                    -- Unix ms, a multiple of the window length
  count        INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL                     -- window_start + window length
) STRICT;
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);
CREATE INDEX refresh_families_dead ON refresh_families (expires_at);
CREATE INDEX audit_events_kind ON audit_events (kind, at);
