-- Contacts have a role: who at the customer a message is for. An enterprise's contract
-- contact (`contract`) is whom its contract reminders go to, not an employee's line.
ALTER TABLE contact_media ADD COLUMN role TEXT NOT NULL DEFAULT 'general';
-- Contacts and enterprise members are deleted softly, as customers and lines are: the row
-- stays for the audit trail and every read skips it.
ALTER TABLE contact_media ADD COLUMN deleted_at TEXT;
ALTER TABLE enterprise_members ADD COLUMN deleted_at TEXT;
