-- CRM core: people who use the system, and the audit trail. Portable SQL (SQLite + PostgreSQL):
-- TEXT ids (UUID strings), TEXT timestamps (RFC 3339 UTC), BIGINT counters.
-- Flags are BIGINT 0/1, not BOOLEAN: sqlx Any cannot decode SQLite BOOLEAN columns.

CREATE TABLE regions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    region_id TEXT REFERENCES regions (id),
    created_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    team_id TEXT REFERENCES teams (id),
    region_id TEXT REFERENCES regions (id),
    -- Set for enterprise admins only; no FK because customers are created after users.
    enterprise_customer_id TEXT,
    password_hash TEXT,
    active BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX users_team ON users (team_id);

-- Only hashes are stored: a leaked table does not leak credentials.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action TEXT NOT NULL,
    -- The customer the change concerns, so scoped readers see only their customers' history.
    customer_id TEXT,
    before_json TEXT,
    after_json TEXT,
    seq BIGINT NOT NULL
);
CREATE INDEX audit_entity ON audit_log (entity, entity_id);
CREATE INDEX audit_customer ON audit_log (customer_id);
CREATE INDEX audit_at ON audit_log (at);
