-- The change log: one row per reading created, updated or deleted, written by triggers in the
-- same transaction as the change itself, so a change is logged exactly when it commits, whoever
-- made it (the API, a bulk upload, the import and prune commands). `GET /station/stream/` serves
-- it. SQLite has one writer, so ids commit in order; AUTOINCREMENT never hands out an id again
-- after retention has removed it. `kind` is created, updated or deleted; the values are the
-- reading after the change (before it, for a delete); `changed_at` (Unix seconds) is when, for
-- `--change-log-retention-days`. The same meaning as the PostgreSQL and MySQL migrations.
CREATE TABLE station_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
    station_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    temperature DOUBLE NOT NULL,
    lat DOUBLE NOT NULL,
    lon DOUBLE NOT NULL,
    changed_at BIGINT NOT NULL
);

-- The largest change id retention has removed: a stream resuming from before it has lost
-- changes and is told to start over. One row.
CREATE TABLE station_changes_pruned (
    singleton BIGINT PRIMARY KEY NOT NULL CHECK (singleton = 1),
    through_id BIGINT NOT NULL
);
INSERT INTO station_changes_pruned (singleton, through_id) VALUES (1, 0);

CREATE TRIGGER station_changes_insert AFTER INSERT ON station BEGIN
    INSERT INTO station_changes
        (kind, station_id, name, timestamp, temperature, lat, lon, changed_at)
        VALUES ('created', NEW.id, NEW.name, NEW.timestamp, NEW.temperature, NEW.lat, NEW.lon,
                CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER station_changes_update AFTER UPDATE ON station BEGIN
    INSERT INTO station_changes
        (kind, station_id, name, timestamp, temperature, lat, lon, changed_at)
        VALUES ('updated', NEW.id, NEW.name, NEW.timestamp, NEW.temperature, NEW.lat, NEW.lon,
                CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER station_changes_delete AFTER DELETE ON station BEGIN
    INSERT INTO station_changes
        (kind, station_id, name, timestamp, temperature, lat, lon, changed_at)
        VALUES ('deleted', OLD.id, OLD.name, OLD.timestamp, OLD.temperature, OLD.lat, OLD.lon,
                CAST(strftime('%s', 'now') AS INTEGER));
END;
