-- SQLite only. Every index of a rowid table ends with the rowid, which `id` is: an index on
-- (timestamp, id) stored each reading's id twice, and one on (timestamp) alone is already in
-- (timestamp, id) order. The same three orders with the id stored once: smaller indexes and the
-- same query plans (cursor seeks such as `timestamp = ? AND id > ?` use the trailing rowid). The
-- aggregates' index keeps its id: temperature follows it there.
-- PostgreSQL's and MySQL's indexes do not repeat the key, and keep their (column, id) form.
DROP INDEX station_timestamp_id;
DROP INDEX station_temperature_id;
DROP INDEX station_name_id;
CREATE INDEX station_timestamp ON station (timestamp);
CREATE INDEX station_temperature ON station (temperature);
CREATE INDEX station_name ON station (name);
