-- Per-rule script counts that last: each instance adds what it counted since its last write
-- to its row for the rule and the day (UTC), so totals sum over instances and survive
-- reloads and restarts. Decision outcomes are counted from `recommendations` instead.
CREATE TABLE rule_counts (
    rule_id TEXT NOT NULL,
    -- One process's run: a restart writes under a new id.
    instance_id TEXT NOT NULL,
    -- YYYY-MM-DD
    day TEXT NOT NULL,
    evaluated BIGINT NOT NULL,
    matched BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    PRIMARY KEY (rule_id, instance_id, day)
);
CREATE INDEX rule_counts_day ON rule_counts (rule_id, day);
