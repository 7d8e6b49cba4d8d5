-- A run that resumes a campaign skips the lines an earlier run decided for, and says so.
ALTER TABLE campaign_runs ADD COLUMN already_decided BIGINT NOT NULL DEFAULT 0;
