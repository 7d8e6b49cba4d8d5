-- Customers and lines are deleted softly: the row stays (the audit trail and the engine's
-- history refer to it) and every read skips it.
ALTER TABLE customers ADD COLUMN deleted_at TEXT;
ALTER TABLE lines ADD COLUMN deleted_at TEXT;
