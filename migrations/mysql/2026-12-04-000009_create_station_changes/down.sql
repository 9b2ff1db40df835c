DROP TRIGGER station_changes_insert;
DROP TRIGGER station_changes_update;
DROP TRIGGER station_changes_delete;
DROP TABLE station_changes_pruned;
DROP TABLE station_changes;
