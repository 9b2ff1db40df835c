DROP INDEX station_timestamp_id;
DROP INDEX station_temperature_id;
DROP INDEX station_name_id;
