-- Device tokens; the same meaning as the SQLite and PostgreSQL migrations (see the SQLite one).
CREATE TABLE device_tokens (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    label VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (CHAR_LENGTH(label) BETWEEN 1 AND 64),
    key_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE
        CHECK (CHAR_LENGTH(key_hash) = 64),
    prefix VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (CHAR_LENGTH(prefix) BETWEEN 1 AND 16),
    scopes VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (scopes IN ('read', 'write', 'read,write')),
    station VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin
        CHECK (CHAR_LENGTH(station) BETWEEN 1 AND 64),
    created BIGINT NOT NULL,
    last_used BIGINT,
    expires BIGINT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
