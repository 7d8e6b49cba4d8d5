-- Secrets the product generates for itself (the delivery-report signing key), so every
-- instance and every restart uses the same one.
CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
