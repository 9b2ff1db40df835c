DROP INDEX station_name_timestamp_temperature ON station;
