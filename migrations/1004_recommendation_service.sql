-- Service messages (bills, contract reminders, staff notices) are delivered like offers but
-- are not offers: statistics leave them out. Rows from before count as marketing.
ALTER TABLE recommendations ADD COLUMN service INTEGER NOT NULL DEFAULT 0;
