-- Where each periodic job got to, so a restart neither repeats nor skips work.
CREATE TABLE job_marks (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
