-- One index per ordering the list offers, each ending in id as the ordering does, so a cursor page
-- (and a range filter on the same column) starts from an index seek whatever the table's size.
-- The primary key serves ordering by id. name also serves the exact name filter.
CREATE INDEX station_timestamp_id ON station (timestamp, id);
CREATE INDEX station_temperature_id ON station (temperature, id);
CREATE INDEX station_name_id ON station (name, id);
