-- Secrets every instance of the service must share, made by the first one to start (the key that
-- signs list cursors, so a cursor from one instance works on the others).
CREATE TABLE service_keys (
    name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY
        CHECK (CHAR_LENGTH(name) BETWEEN 1 AND 64),
    secret TEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
