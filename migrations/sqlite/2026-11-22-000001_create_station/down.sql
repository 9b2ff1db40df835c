DROP TABLE station;
