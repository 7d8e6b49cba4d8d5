-- Parties (TMF632), customers (TMF629), contacts, consents (TMF644-like), enterprise members.

CREATE TABLE parties (
    id TEXT PRIMARY KEY,
    party_type TEXT NOT NULL,
    given_name TEXT,
    family_name TEXT,
    trading_name TEXT,
    registration_number TEXT,
    birth_date TEXT,
    nationality TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    customer_type TEXT NOT NULL,
    party_id TEXT REFERENCES parties (id),
    parent_customer_id TEXT REFERENCES customers (id),
    account_manager_id TEXT REFERENCES users (id),
    region_id TEXT REFERENCES regions (id),
    value_tier TEXT NOT NULL,
    credit_class TEXT NOT NULL,
    loyalty_points BIGINT NOT NULL DEFAULT 0,
    churn_score DOUBLE PRECISION NOT NULL DEFAULT 0,
    arpu_cents BIGINT NOT NULL DEFAULT 0,
    segment TEXT NOT NULL,
    -- Enterprise customers are served by industry teams (行业客户经理).
    industry TEXT,
    language TEXT NOT NULL,
    timezone TEXT NOT NULL,
    home_country TEXT NOT NULL,
    preferred_channel TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX customers_manager ON customers (account_manager_id);
CREATE INDEX customers_region ON customers (region_id);
CREATE INDEX customers_parent ON customers (parent_customer_id);

CREATE TABLE enterprise_members (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    name TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    department TEXT,
    title TEXT,
    email TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (customer_id, msisdn)
);

-- TMF contactMedium: one row per phone / email / address.
CREATE TABLE contact_media (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    contact_name TEXT,
    medium_type TEXT NOT NULL,
    preferred BIGINT NOT NULL DEFAULT 0,
    phone_number TEXT,
    email_address TEXT,
    street1 TEXT,
    city TEXT,
    post_code TEXT,
    country TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX contact_media_customer ON contact_media (customer_id);

CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    granted BIGINT NOT NULL,
    source TEXT,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (customer_id, channel, purpose)
);
