-- How many readings there are, kept by triggers in the same transaction as each insert and
-- delete, so a page by number reads its `count` here instead of counting the table (COUNT(*)
-- reads every row: 323 ms at 10 M rows). The count is the sum of 16 rows, one per id modulo
-- 16, so concurrent inserts update different rows instead of queueing for one row's lock.
-- Statement triggers with transition tables, so COPY and multi-row inserts update each row once;
-- rows are updated in shard order, so two such statements cannot deadlock. The same meaning as
-- the SQLite and MySQL migrations.
CREATE TABLE station_count (
    shard BIGINT PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    readings BIGINT NOT NULL
);
INSERT INTO station_count (shard, readings)
    SELECT shard, (SELECT COUNT(*) FROM station WHERE station.id % 16 = shard)
    FROM generate_series(0, 15) AS shard;

CREATE FUNCTION station_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE station_count SET readings = 0;
    ELSIF TG_OP = 'INSERT' THEN
        FOR changed IN SELECT id % 16 AS shard, COUNT(*) AS readings FROM inserted
                       GROUP BY 1 ORDER BY 1 LOOP
            UPDATE station_count SET readings = readings + changed.readings
                WHERE shard = changed.shard;
        END LOOP;
    ELSE
        FOR changed IN SELECT id % 16 AS shard, COUNT(*) AS readings FROM deleted
                       GROUP BY 1 ORDER BY 1 LOOP
            UPDATE station_count SET readings = readings - changed.readings
                WHERE shard = changed.shard;
        END LOOP;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER station_count_insert AFTER INSERT ON station
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION station_count_changed();
CREATE TRIGGER station_count_delete AFTER DELETE ON station
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION station_count_changed();
CREATE TRIGGER station_count_truncate AFTER TRUNCATE ON station
    FOR EACH STATEMENT EXECUTE FUNCTION station_count_changed();
