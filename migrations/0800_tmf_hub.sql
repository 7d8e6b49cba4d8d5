-- TM Forum `/hub` listeners (TMF680 and TMF681): who registered which callback, with the
-- principal as it was then, so events are only sent for customers that caller could see.
CREATE TABLE tmf_hub_subscriptions (
    id TEXT PRIMARY KEY,
    -- recommendationManagement | communicationManagement
    api TEXT NOT NULL,
    callback TEXT NOT NULL,
    query TEXT,
    principal TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX tmf_hub_subscriptions_api ON tmf_hub_subscriptions (api);

-- One row per event and listener: the notifier posts it, retries with backoff (epoch
-- milliseconds in next_attempt_at) and keeps it once delivered so the same event (same
-- event_key) is never queued twice for a listener.
CREATE TABLE tmf_hub_deliveries (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    event_key TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (subscription_id, event_key)
);
CREATE INDEX tmf_hub_deliveries_due ON tmf_hub_deliveries (delivered_at, next_attempt_at);

-- How far the notifier has read the engine's recommendations (their `seq`).
CREATE TABLE tmf_hub_cursor (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
