-- Rules as published versions: every instance runs the highest-numbered version, so a
-- publish is one row here and every instance converges on it. Portable SQL as elsewhere.

CREATE TABLE rule_versions (
    number BIGINT PRIMARY KEY,
    -- Who wrote the change(s): the drafts' authors, `bootstrap` for the rules folder read at
    -- first start, the publisher for a rollback or a reload of the rules folder.
    author TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- The older version a rollback restored.
    restores BIGINT
);

-- Each version holds its whole set: rule sources and the contact policy (`policy.toml`).
CREATE TABLE rule_version_files (
    version BIGINT NOT NULL REFERENCES rule_versions (number),
    path TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (version, path)
);

-- A marketer's proposed change to one file of the published set, until it is published.
CREATE TABLE rule_drafts (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    -- NULL: the change deletes the file.
    content TEXT,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    -- The version the change was written against: a publish refuses it when the file has
    -- changed since.
    base_version BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX rule_drafts_created ON rule_drafts (created_at);
