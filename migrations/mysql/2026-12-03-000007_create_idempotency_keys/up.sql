-- The answers to requests sent with an `Idempotency-Key`, per caller, so a retry gets the first
-- answer again instead of writing twice. A row is a claim while `status` is NULL (the request is
-- running; `expires_at` ends the claim of an instance that crashed), and a stored answer once it
-- is set (`expires_at` then ends its keeping). Times are Unix milliseconds. Keys compare byte
-- for byte (utf8mb4_nopad_bin), as on the other engines; a bulk upload's answer can be megabytes
-- (LONGTEXT). The same meaning as the SQLite and PostgreSQL migrations.
CREATE TABLE idempotency_keys (
    caller VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (CHAR_LENGTH(caller) BETWEEN 1 AND 255),
    idempotency_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (CHAR_LENGTH(idempotency_key) BETWEEN 1 AND 255),
    claim TEXT NOT NULL,
    request_hash TEXT,
    status BIGINT,
    location TEXT,
    body LONGTEXT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (caller, idempotency_key),
    INDEX idempotency_keys_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
