-- The segment (the subscriber's value tier) a decision learned its propensity for, so the
-- answers to it teach that segment's model.
ALTER TABLE recommendations ADD COLUMN segment TEXT;
