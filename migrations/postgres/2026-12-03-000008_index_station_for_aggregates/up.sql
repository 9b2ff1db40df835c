-- One station's readings in time order, with their temperatures: an aggregate over a time range
-- (and the latest reading of a station) reads one range of this index and never the table.
CREATE INDEX station_name_timestamp_id_temperature ON station (name, timestamp, id, temperature);
