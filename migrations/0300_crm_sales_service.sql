-- Sales and service: notices, opportunities (商机), agreements (合同, TMF651), service requests
-- with approval workflows (业务申请/流程审批, TMF621), retention cases (维系挽留), interactions
-- (TMF683), knowledge base and announcements. Portable SQL as in 0100.

-- In-app notices for users (reminders, escalations, feedback).
CREATE TABLE notices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    entity TEXT,
    entity_id TEXT,
    customer_id TEXT,
    created_at TEXT NOT NULL,
    read_at TEXT,
    seq BIGINT NOT NULL
);
CREATE INDEX notices_user ON notices (user_id, seq);

CREATE TABLE opportunities (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    title TEXT NOT NULL,
    -- offer | agent | enterprise
    source TEXT NOT NULL,
    recommendation_id TEXT,
    offer_code TEXT,
    stage TEXT NOT NULL,
    probability BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL DEFAULT 0,
    owner_id TEXT REFERENCES users (id),
    expected_close TEXT,
    close_reason TEXT,
    closed_at TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX opportunities_customer ON opportunities (customer_id);
CREATE UNIQUE INDEX opportunities_recommendation ON opportunities (recommendation_id);

CREATE TABLE opportunity_follow_ups (
    id TEXT PRIMARY KEY,
    opportunity_id TEXT NOT NULL REFERENCES opportunities (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    note TEXT NOT NULL,
    next_action TEXT,
    next_at TEXT,
    actor_id TEXT NOT NULL,
    at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX opportunity_follow_ups_opp ON opportunity_follow_ups (opportunity_id, seq);
CREATE INDEX opportunity_follow_ups_customer ON opportunity_follow_ups (customer_id);

CREATE TABLE agreements (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    name TEXT NOT NULL,
    agreement_type TEXT NOT NULL,
    -- draft | active | expired | terminated
    status TEXT NOT NULL,
    -- agreementPeriod, YYYY-MM-DD
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    reminder_days BIGINT NOT NULL,
    document_ref TEXT,
    amount_cents BIGINT NOT NULL DEFAULT 0,
    -- The end date the renewal reminder was sent for (a new period reminds again).
    reminded_for TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX agreements_customer ON agreements (customer_id);
CREATE INDEX agreements_end ON agreements (status, end_date);

-- Approval workflow per service-request type: ordered roles (JSON array) and SLA.
CREATE TABLE workflows (
    request_type TEXT PRIMARY KEY,
    steps TEXT NOT NULL,
    sla_hours BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
INSERT INTO workflows (request_type, steps, sla_hours, updated_at, version) VALUES
    ('new_install', '["team_lead"]', 72, '2026-01-01T00:00:00.000Z', 1),
    ('product_change', '[]', 24, '2026-01-01T00:00:00.000Z', 1),
    ('suspension', '["team_lead"]', 24, '2026-01-01T00:00:00.000Z', 1),
    ('cancellation', '["team_lead","region_head"]', 48, '2026-01-01T00:00:00.000Z', 1),
    ('repair', '[]', 24, '2026-01-01T00:00:00.000Z', 1),
    ('fault_report', '[]', 8, '2026-01-01T00:00:00.000Z', 1);

CREATE TABLE service_requests (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    request_type TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    -- Approval roles copied from the workflow when raised (JSON array), and the next one.
    steps TEXT NOT NULL,
    current_step BIGINT NOT NULL DEFAULT 0,
    sla_hours BIGINT NOT NULL,
    due_at TEXT NOT NULL,
    escalation_level BIGINT NOT NULL DEFAULT 0,
    requester_id TEXT NOT NULL,
    assignee_id TEXT,
    feedback TEXT,
    resolved_at TEXT,
    closed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX service_requests_customer ON service_requests (customer_id);
CREATE INDEX service_requests_due ON service_requests (status, due_at);

CREATE TABLE service_request_history (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES service_requests (id),
    customer_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    step BIGINT,
    note TEXT,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX service_request_history_req ON service_request_history (request_id, seq);

CREATE TABLE retention_cases (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    -- churn_score | complaint | inactivity | manual
    trigger_kind TEXT NOT NULL,
    churn_score DOUBLE PRECISION,
    -- open | closed
    status TEXT NOT NULL,
    -- pending | retained | lost
    outcome TEXT NOT NULL,
    owner_id TEXT,
    summary TEXT NOT NULL,
    closed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX retention_cases_customer ON retention_cases (customer_id, status);

CREATE TABLE retention_activities (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES retention_cases (id),
    customer_id TEXT NOT NULL,
    -- task | visit | call_back | care
    kind TEXT NOT NULL,
    note TEXT NOT NULL,
    due_at TEXT,
    done BIGINT NOT NULL DEFAULT 0,
    actor_id TEXT NOT NULL,
    at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX retention_activities_case ON retention_activities (case_id, seq);
CREATE INDEX retention_activities_customer ON retention_activities (customer_id);

-- Visits, calls and complaints recorded by people (TMF683 PartyInteraction).
CREATE TABLE interactions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    direction TEXT NOT NULL,
    channel TEXT,
    subject TEXT NOT NULL,
    note TEXT,
    actor_id TEXT NOT NULL,
    at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX interactions_customer ON interactions (customer_id, at);

CREATE TABLE knowledge_articles (
    id TEXT PRIMARY KEY,
    -- product | script | case | faq
    category TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    -- Normalised ",tag1,tag2," so one tag matches with LIKE '%,tag,%'.
    tags TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE announcements (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    -- A role name, or NULL for everyone.
    audience_role TEXT,
    publish_from TEXT NOT NULL,
    publish_until TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
