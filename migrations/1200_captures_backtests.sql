-- Samples of live events recorded for tests and backtests, and backtest jobs. Portable SQL
-- as elsewhere: TEXT ids and RFC 3339 times, BIGINT counts, JSON as TEXT.

CREATE TABLE captures (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- JSON arrays of event types and of numbers; NULL takes any.
    types TEXT,
    msisdns TEXT,
    max_events BIGINT NOT NULL,
    -- Recording ends at this time if the limit is not reached first; NULL: no end time.
    stop_at TEXT,
    -- running | ended
    status TEXT NOT NULL,
    -- limit | until | stopped, once ended.
    ended_because TEXT,
    -- Events recorded, and events the tap dropped rather than hold up ingest.
    events BIGINT NOT NULL,
    dropped BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX captures_status ON captures (status);

-- Each event as the event contract writes it (docs/contract-events.md), numbered 1, 2, ...
-- in the order recorded.
CREATE TABLE capture_events (
    capture_id TEXT NOT NULL REFERENCES captures (id),
    seq BIGINT NOT NULL,
    msisdn TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (capture_id, seq)
);

-- A backtest: what it runs, how far it is, and its result, so any instance answers for it.
CREATE TABLE backtests (
    id TEXT PRIMARY KEY,
    -- running | done | failed
    status TEXT NOT NULL,
    -- JSON: the set tested (a version, or drafts on the published version) and the events.
    spec TEXT NOT NULL,
    -- The published version the tested set is compared with.
    published_version BIGINT NOT NULL,
    events_total BIGINT NOT NULL,
    events_done BIGINT NOT NULL,
    -- JSON, once done.
    result TEXT,
    error TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- Moves while the job runs: a running job that stopped moving died with its instance.
    updated_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX backtests_created ON backtests (created_at);
