-- SQLite only. A bulk upload logs its readings' changes and adds them to the kept count with one
-- statement each over their ids, instead of two triggers firing for each row, which cost the one
-- writer about as much as the readings themselves (see bench/README.md, "Devices and
-- durability"). While such an upload runs, its transaction holds the one row of this table and
-- the two insert triggers stand aside; the upload removes the row again before it writes the
-- log and the count, in the same savepoint, so no committed state ever holds it. Every other
-- insert (the API's single creates, the import command, SQL by hand) is still logged and
-- counted row by row by the triggers.
CREATE TABLE station_bulk_insert (
    singleton BIGINT PRIMARY KEY NOT NULL CHECK (singleton = 1)
);
DROP TRIGGER station_changes_insert;
CREATE TRIGGER station_changes_insert AFTER INSERT ON station
    WHEN NOT EXISTS (SELECT 1 FROM station_bulk_insert) BEGIN
    INSERT INTO station_changes
        (kind, station_id, name, timestamp, temperature, lat, lon, changed_at)
        VALUES ('created', NEW.id, NEW.name, NEW.timestamp, NEW.temperature, NEW.lat, NEW.lon,
                CAST(strftime('%s', 'now') AS INTEGER));
END;
DROP TRIGGER station_count_insert;
CREATE TRIGGER station_count_insert AFTER INSERT ON station
    WHEN NOT EXISTS (SELECT 1 FROM station_bulk_insert) BEGIN
    UPDATE station_count SET readings = readings + 1 WHERE shard = NEW.id % 16;
END;
