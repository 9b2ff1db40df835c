DROP INDEX station_timestamp_id ON station;
DROP INDEX station_temperature_id ON station;
DROP INDEX station_name_id ON station;
