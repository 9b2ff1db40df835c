-- One row per sensor reading. AUTOINCREMENT (as Django uses on SQLite) so a deleted id is never reused.
CREATE TABLE station (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    timestamp BIGINT NOT NULL CHECK (timestamp BETWEEN 0 AND 253402300799),
    temperature DOUBLE NOT NULL CHECK (temperature BETWEEN -273.15 AND 1000),
    lat DOUBLE NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon DOUBLE NOT NULL CHECK (lon BETWEEN -180 AND 180)
);
