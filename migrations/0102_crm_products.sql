-- Accounts (TMF666), lines, catalog (TMF620), subscriptions (TMF637), loyalty ledger.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    name TEXT NOT NULL,
    account_type TEXT NOT NULL,
    state TEXT NOT NULL,
    payment_method TEXT,
    bill_cycle_day BIGINT,
    currency TEXT NOT NULL,
    credit_limit_cents BIGINT NOT NULL DEFAULT 0,
    balance_cents BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX accounts_customer ON accounts (customer_id);

CREATE TABLE lines (
    id TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    account_id TEXT REFERENCES accounts (id),
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    imsi TEXT,
    activated_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX lines_customer ON lines (customer_id);

-- Lists (segments, channels, bundled offerings) are JSON arrays in TEXT: read whole, never queried.
CREATE TABLE product_offerings (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    offering_type TEXT NOT NULL,
    is_bundle BIGINT NOT NULL DEFAULT 0,
    bundled_offering_ids TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    recurring_period TEXT,
    market_segments TEXT NOT NULL,
    channels TEXT NOT NULL,
    lifecycle_status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    line_id TEXT REFERENCES lines (id),
    offering_id TEXT NOT NULL REFERENCES product_offerings (id),
    status TEXT NOT NULL,
    start_date TEXT,
    termination_date TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);

CREATE TABLE loyalty_ledger (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    delta BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    reason TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX loyalty_customer ON loyalty_ledger (customer_id, seq);
