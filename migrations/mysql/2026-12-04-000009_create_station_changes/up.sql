-- The change log: one row per reading created, updated or deleted, written by triggers in the
-- same transaction as the change itself, so a change is logged exactly when it commits, whoever
-- made it (the API, a bulk upload, the import and prune commands). `GET /station/stream/` serves
-- it. AUTO_INCREMENT ids can commit out of order; the stream waits for the transactions that
-- could still hold a smaller id (see src/changes/feed.rs). InnoDB keeps the counter across
-- restarts, so an id retention removed is never handed out again. `kind` is created, updated or
-- deleted; the values are the reading after the change (before it, for a delete); `changed_at`
-- (Unix seconds) is when, for `--change-log-retention-days`. The same meaning as the SQLite and
-- PostgreSQL migrations.
CREATE TABLE station_changes (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind VARCHAR(7) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
        CHECK (kind IN ('created', 'updated', 'deleted')),
    station_id BIGINT NOT NULL,
    name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    `timestamp` BIGINT NOT NULL,
    temperature DOUBLE NOT NULL,
    lat DOUBLE NOT NULL,
    lon DOUBLE NOT NULL,
    changed_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin;

-- The largest change id retention has removed: a stream resuming from before it has lost
-- changes and is told to start over. One row.
CREATE TABLE station_changes_pruned (
    singleton BIGINT NOT NULL PRIMARY KEY CHECK (singleton = 1),
    through_id BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO station_changes_pruned (singleton, through_id) VALUES (1, 0);

CREATE TRIGGER station_changes_insert AFTER INSERT ON station FOR EACH ROW
    INSERT INTO station_changes
        (kind, station_id, name, `timestamp`, temperature, lat, lon, changed_at)
        VALUES ('created', NEW.id, NEW.name, NEW.`timestamp`, NEW.temperature, NEW.lat, NEW.lon,
                UNIX_TIMESTAMP());
CREATE TRIGGER station_changes_update AFTER UPDATE ON station FOR EACH ROW
    INSERT INTO station_changes
        (kind, station_id, name, `timestamp`, temperature, lat, lon, changed_at)
        VALUES ('updated', NEW.id, NEW.name, NEW.`timestamp`, NEW.temperature, NEW.lat, NEW.lon,
                UNIX_TIMESTAMP());
CREATE TRIGGER station_changes_delete AFTER DELETE ON station FOR EACH ROW
    INSERT INTO station_changes
        (kind, station_id, name, `timestamp`, temperature, lat, lon, changed_at)
        VALUES ('deleted', OLD.id, OLD.name, OLD.`timestamp`, OLD.temperature, OLD.lat, OLD.lon,
                UNIX_TIMESTAMP());
