-- Secrets every instance of the service must share, made by the first one to start (the key that
-- signs list cursors, so a cursor from one instance works on the others).
CREATE TABLE service_keys (
    name TEXT PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 64),
    secret TEXT NOT NULL
);
