-- Delivery bookkeeping per recommendation: the provider's message id (an SMSC's or gateway's,
-- so its receipts find the offer), how many attempts were made, and when a transiently failed
-- one is tried again (epoch milliseconds; the outbox sweep picks it up then).
ALTER TABLE recommendations ADD COLUMN provider_id TEXT;
ALTER TABLE recommendations ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recommendations ADD COLUMN next_attempt_at BIGINT;
CREATE INDEX recommendations_provider ON recommendations (channel, provider_id);
