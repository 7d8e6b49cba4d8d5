-- Proactive marketing: segments, campaigns (营销计划) with approval and runs, and the TMF680 /
-- TMF681 resources. Portable SQL: TEXT ids and RFC 3339 times, BIGINT numbers, JSON in TEXT.

CREATE TABLE segments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    -- The criteria document (validated JSON), compiled to bound SQL on every use.
    criteria TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    -- plan | submitted | approved | rejected | active | completed | cancelled
    state TEXT NOT NULL,
    segment_id TEXT NOT NULL REFERENCES segments (id),
    budget_cents BIGINT NOT NULL DEFAULT 0,
    offer_code TEXT NOT NULL,
    message TEXT NOT NULL,
    -- JSON array of channel names, in order of preference.
    channels TEXT NOT NULL,
    validity_secs BIGINT NOT NULL,
    -- JSON array of rule ids attached to the campaign.
    rule_ids TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    -- Share of the segment held back as a control group (always 0 until control groups land).
    control_pct BIGINT NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    submitted_by TEXT,
    decided_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX campaigns_state ON campaigns (state);

CREATE TABLE campaign_transitions (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    note TEXT,
    at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX campaign_transitions_campaign ON campaign_transitions (campaign_id, seq);

CREATE TABLE campaign_runs (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    actor_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    targeted BIGINT NOT NULL,
    decided BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    suppressed BIGINT NOT NULL,
    -- JSON object: suppression reason -> count.
    suppressed_by_reason TEXT NOT NULL,
    batches BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX campaign_runs_campaign ON campaign_runs (campaign_id, seq);

CREATE INDEX recommendations_campaign ON recommendations (campaign_id);

-- TMF680 queryProductRecommendation, stored so GET by id answers what POST answered.
CREATE TABLE tmf_recommendation_queries (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX tmf_rec_queries_customer ON tmf_recommendation_queries (customer_id);

-- TMF681 communicationMessage: one row per message; the receiver's line decides the scope.
CREATE TABLE tmf_messages (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    msisdn TEXT NOT NULL,
    -- initial | inProgress | completed | cancelled | failed
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX tmf_messages_customer ON tmf_messages (customer_id);
