-- The operator's own id for a customer (from their billing or legacy CRM): bulk imports upsert
-- by it and search finds it. Unique where present.
ALTER TABLE customers ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX customers_external_id ON customers (external_id);

-- `Idempotency-Key` on a POST: the first response, replayed for a retry with the same key and
-- body. `owner` is a hash of the credential, so keys of different callers never meet; a row
-- without a status is a request still running.
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    etag TEXT,
    location TEXT,
    body TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (owner, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
