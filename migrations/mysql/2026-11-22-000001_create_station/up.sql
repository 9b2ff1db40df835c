-- One row per sensor reading; the same meaning as the SQLite and PostgreSQL migrations (checked by
-- tests/api/schema_parity.rs). Text compares byte for byte with no trailing-space padding
-- (utf8mb4_nopad_bin), as it does on the other engines; InnoDB keeps the AUTO_INCREMENT counter
-- across restarts, so a deleted id is never handed out again.
CREATE TABLE station (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (CHAR_LENGTH(name) BETWEEN 1 AND 64),
    `timestamp` BIGINT NOT NULL CHECK (`timestamp` BETWEEN 0 AND 253402300799),
    temperature DOUBLE NOT NULL CHECK (temperature BETWEEN -273.15 AND 1000),
    lat DOUBLE NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon DOUBLE NOT NULL CHECK (lon BETWEEN -180 AND 180)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;
