-- Engine tables. Portable SQL: the same file runs on SQLite and PostgreSQL.

CREATE TABLE subscriber_state (
    msisdn TEXT PRIMARY KEY,
    state BYTEA NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE recommendations (
    id TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    offer_code TEXT NOT NULL,
    channel TEXT NOT NULL,
    message TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    trigger_event_id TEXT,
    campaign_id TEXT,
    request_id TEXT,
    decided_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    body TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX recommendations_msisdn ON recommendations (msisdn, decided_at);
CREATE INDEX recommendations_rule ON recommendations (rule_id);
CREATE INDEX recommendations_seq ON recommendations (seq);

CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    field TEXT,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);

CREATE TABLE offer_responses (
    id TEXT PRIMARY KEY,
    recommendation_id TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    actor TEXT NOT NULL,
    channel TEXT NOT NULL,
    responded_at TEXT NOT NULL
);
CREATE INDEX offer_responses_rec ON offer_responses (recommendation_id);
