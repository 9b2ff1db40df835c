DROP TRIGGER station_changes_insert ON station;
DROP TRIGGER station_changes_update ON station;
DROP TRIGGER station_changes_delete ON station;
DROP FUNCTION station_changes_record();
DROP TABLE station_changes_pruned;
DROP TABLE station_changes;
