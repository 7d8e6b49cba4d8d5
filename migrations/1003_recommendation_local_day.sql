-- The operator's calendar day of each decision (`engine.default_timezone`), so daily
-- statistics put a session's offers on one day whatever made them (events stamped +08:00,
-- API calls in UTC). Rows from before are bucketed by their own stamp.
ALTER TABLE recommendations ADD COLUMN local_day TEXT;
