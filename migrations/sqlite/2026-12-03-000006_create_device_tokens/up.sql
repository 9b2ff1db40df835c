-- Device tokens (DRF's TokenAuthentication, scoped): a token is not a user. Only the SHA-256 of
-- a key is stored, so a leaked table grants nothing; `prefix` is the key's first characters, to
-- recognise a token by. `scopes` is "read", "write" or "read,write"; times are Unix seconds.
-- AUTOINCREMENT so a revoked token's id is never handed out again.
CREATE TABLE device_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    label TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 64),
    key_hash TEXT NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix TEXT NOT NULL CHECK (length(prefix) BETWEEN 1 AND 16),
    scopes TEXT NOT NULL CHECK (scopes IN ('read', 'write', 'read,write')),
    station TEXT CHECK (length(station) BETWEEN 1 AND 64),
    created BIGINT NOT NULL,
    last_used BIGINT,
    expires BIGINT
);
