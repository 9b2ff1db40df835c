DROP TRIGGER station_count_delete;
DROP TRIGGER station_count_insert;
DROP TABLE station_count;
