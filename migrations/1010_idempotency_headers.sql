-- A replayed answer carries the headers of the first one that a client reads besides
-- content-type, ETag and Location (which have their own columns): `Import-Records` on an
-- import. A JSON object, header name -> value.
ALTER TABLE idempotency_keys ADD COLUMN headers TEXT;
