-- The outbox: a delivery claim (epoch milliseconds) lets one deliverer at a time send a
-- queued recommendation; a claim left by a crashed process expires and it is picked up again.
ALTER TABLE recommendations ADD COLUMN claimed_until BIGINT;
CREATE INDEX recommendations_status ON recommendations (status, seq);
