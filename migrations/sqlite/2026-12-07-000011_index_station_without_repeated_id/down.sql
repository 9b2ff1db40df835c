DROP INDEX station_timestamp;
DROP INDEX station_temperature;
DROP INDEX station_name;
CREATE INDEX station_timestamp_id ON station (timestamp, id);
CREATE INDEX station_temperature_id ON station (temperature, id);
CREATE INDEX station_name_id ON station (name, id);
