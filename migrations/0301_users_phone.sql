-- A mobile number for staff, used for SMS notifications (contract reminders). Optional.
ALTER TABLE users ADD COLUMN phone TEXT;
