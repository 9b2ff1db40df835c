DROP TRIGGER station_count_insert;
CREATE TRIGGER station_count_insert AFTER INSERT ON station BEGIN
    UPDATE station_count SET readings = readings + 1 WHERE shard = NEW.id % 16;
END;
DROP TRIGGER station_changes_insert;
CREATE TRIGGER station_changes_insert AFTER INSERT ON station BEGIN
    INSERT INTO station_changes
        (kind, station_id, name, timestamp, temperature, lat, lon, changed_at)
        VALUES ('created', NEW.id, NEW.name, NEW.timestamp, NEW.temperature, NEW.lat, NEW.lon,
                CAST(strftime('%s', 'now') AS INTEGER));
END;
DROP TABLE station_bulk_insert;
