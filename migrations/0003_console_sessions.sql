-- Gatehouse schema, version 3: admin console sessions. See docs/storage-schema.md and docs/console.md.

-- A console session is a refresh family whose one token (generation 0, never rotated) is the
-- console cookie's, stored as its SHA-256 like every refresh token. Signed in with an API key,
-- it also names the key: revoking the key ends the session.
ALTER TABLE refresh_families ADD COLUMN console INTEGER NOT NULL DEFAULT 0;  -- 1: a console session
ALTER TABLE refresh_families ADD COLUMN api_key_id TEXT;                    -- the key it lives on
