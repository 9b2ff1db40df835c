DROP TRIGGER station_count_truncate ON station;
DROP TRIGGER station_count_delete ON station;
DROP TRIGGER station_count_insert ON station;
DROP FUNCTION station_count_changed();
DROP TABLE station_count;
