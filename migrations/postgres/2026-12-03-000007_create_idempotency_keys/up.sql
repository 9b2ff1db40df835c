-- The answers to requests sent with an `Idempotency-Key`, per caller, so a retry gets the first
-- answer again instead of writing twice. A row is a claim while `status` is NULL (the request is
-- running; `expires_at` ends the claim of an instance that crashed), and a stored answer once it
-- is set (`expires_at` then ends its keeping). Times are Unix milliseconds. The same meaning as
-- the SQLite and MySQL migrations.
CREATE TABLE idempotency_keys (
    caller TEXT COLLATE "C" NOT NULL CHECK (char_length(caller) BETWEEN 1 AND 255),
    idempotency_key TEXT COLLATE "C" NOT NULL
        CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    claim TEXT NOT NULL,
    request_hash TEXT,
    status BIGINT,
    location TEXT,
    body TEXT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (caller, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
