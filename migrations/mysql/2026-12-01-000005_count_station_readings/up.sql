-- How many readings there are, kept by triggers in the same transaction as each insert and
-- delete, so a page by number reads its `count` here instead of counting the table. The count
-- is the sum of 16 rows, one per id modulo 16, so concurrent inserts update different rows
-- instead of queueing for one row's lock. TRUNCATE fires no triggers on MySQL/MariaDB: delete
-- readings with DELETE. The same meaning as the SQLite and PostgreSQL migrations.
CREATE TABLE station_count (
    shard BIGINT NOT NULL PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    readings BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO station_count (shard, readings)
    VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0),
           (8, 0), (9, 0), (10, 0), (11, 0), (12, 0), (13, 0), (14, 0), (15, 0);
UPDATE station_count
    SET readings = (SELECT COUNT(*) FROM station WHERE station.id % 16 = station_count.shard);
CREATE TRIGGER station_count_insert AFTER INSERT ON station FOR EACH ROW
    UPDATE station_count SET readings = readings + 1 WHERE shard = NEW.id % 16;
CREATE TRIGGER station_count_delete AFTER DELETE ON station FOR EACH ROW
    UPDATE station_count SET readings = readings - 1 WHERE shard = OLD.id % 16;
