//! Data scope on every route: the operations come from the served OpenAPI document, so a new
//! route is walked without anyone remembering to add it. Plus the two engine views that used
//! to ignore scope: dead letters and the SMS outbox.

use std::collections::HashMap;

use crate::common;

use common::world::{id, world, World};
use common::{on_both, sms_rec, Actor, TestApp, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};

/// c3's line (customer of am3, team T2, region West): outside every scoped principal's view.
const M3: &str = "8613900001003";
/// A member line of `other_ent` (also am3's, West).
const MEMBER_MSISDN: &str = "8613900009993";
const MISSING: &str = "00000000-no-such-record";

/// c3's (and other_ent's) records, created as admin, by the name a path or query calls them.
struct Foreign {
    ids: HashMap<&'static str, String>,
    /// What must never appear in a scoped caller's successful response.
    markers: Vec<String>,
}

async fn created(t: &TestApp, path: &str, body: Value) -> String {
    let r = t.post(ADMIN_KEY, path, body).await;
    assert_eq!(r.status, 201, "fixture {path}: {}", r.body);
    id(&r.body)
}

async fn foreign_records(t: &TestApp, w: &World) -> Foreign {
    let c3 = w.c3.clone();
    let line = t
        .get(ADMIN_KEY, &format!("/api/v1/lines/{M3}"))
        .await
        .expect(200);
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    ids.insert("customers", c3.clone());
    ids.insert("msisdn", M3.into());
    ids.insert("to", M3.into());
    ids.insert("line", M3.into());
    ids.insert("lines", id(&line));
    ids.insert("line_id", id(&line));
    ids.insert("accounts", line["account_id"].as_str().unwrap().into());
    ids.insert("account_id", line["account_id"].as_str().unwrap().into());
    ids.insert("customer_id", c3.clone());
    ids.insert("users", w.am3.id.clone());
    ids.insert("request_type", "fault_report".into());
    let c = json!({"customer_id": c3});
    let with = |extra: Value| {
        let mut b = c.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let opp = created(t, "/api/v1/opportunities", with(json!({"title": "Fibre"}))).await;
    ids.insert("opportunities", opp);
    let sr = with(json!({"request_type": "fault_report", "title": "No signal"}));
    ids.insert(
        "service-requests",
        created(t, "/api/v1/service-requests", sr).await,
    );
    let agr = with(json!({"name": "2y", "start_date": "2026-01-01", "end_date": "2027-12-31"}));
    ids.insert("agreements", created(t, "/api/v1/agreements", agr).await);
    let rc = with(json!({"trigger_kind": "complaint", "summary": "dropped calls"}));
    ids.insert(
        "retention-cases",
        created(t, "/api/v1/retention-cases", rc).await,
    );
    let plan =
        json!({"code": "PLAN_X", "name": "Plan X", "offering_type": "plan", "price_cents": 100});
    created(t, "/api/v1/catalog/offerings", plan).await;
    let sub = with(json!({"line_id": id(&line), "offering_id": "PLAN_X"}));
    ids.insert(
        "subscriptions",
        created(t, "/api/v1/subscriptions", sub).await,
    );
    let contact = json!({"medium_type": "phone", "phone_number": "8613911113333"});
    let contacts = format!("/api/v1/customers/{c3}/contacts");
    ids.insert("contact_id", created(t, &contacts, contact).await);
    let consent =
        json!({"channel": "sms", "purpose": "marketing", "granted": true, "source": "shop"});
    let consents = format!("/api/v1/customers/{c3}/consents");
    ids.insert("consent_id", created(t, &consents, consent).await);
    let member = json!({"name": "Li Si", "msisdn": MEMBER_MSISDN});
    let members = format!("/api/v1/customers/{}/members", w.other_ent);
    ids.insert("member_id", created(t, &members, member).await);
    let interaction = with(json!({"kind": "call", "subject": "asked about fibre"}));
    created(t, "/api/v1/interactions", interaction).await;
    // The engine's records of that line: an offer, its SMS in the outbox, a dead letter.
    let rec = sms_rec("rec-foreign", M3);
    t.store_rec(&rec).await;
    let outbox = t
        .app
        .state
        .channels
        .sms_outbox
        .as_ref()
        .expect("outbox mode");
    outbox.send(&rec).unwrap();
    let payload = format!(r#"{{"id":"x1","type":"nope","msisdn":"{M3}"}}"#);
    let dl = &t.app.state.pipeline.deps.dead_letters;
    dl.put(
        "http",
        Some("type"),
        "unknown event type",
        payload.as_bytes(),
    )
    .await
    .unwrap();
    for k in [
        "recommendations",
        "recommendation_id",
        "queryProductRecommendation",
        "id",
    ] {
        ids.insert(k, rec.id.clone());
    }
    Foreign {
        ids,
        markers: vec![c3, w.other_ent.clone(), M3.into(), MEMBER_MSISDN.into()],
    }
}

/// What any write to c3's or other_ent's records leaves behind: their audit records (every
/// CRM write is audited in its transaction), their rows' versions, and the answers, statuses
/// and deliveries of offers to c3's line.
async fn foreign_writes(t: &TestApp, w: &World) -> Vec<(&'static str, String)> {
    let pool = &t.app.state.db.pool;
    let mut out = Vec::new();
    let customers = [w.c3.as_str(), w.other_ent.as_str()];
    for (what, sql) in [
        ("audit", "SELECT COUNT(*) FROM audit_log WHERE customer_id IN ($1, $2)"),
        ("customers", "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM customers WHERE id IN ($1, $2)"),
        ("lines", "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM lines WHERE customer_id IN ($1, $2)"),
        (
            "members",
            "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM enterprise_members WHERE customer_id IN ($1, $2)",
        ),
        (
            "subscriptions",
            "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM subscriptions WHERE customer_id IN ($1, $2)",
        ),
    ] {
        let (n,): (i64,) = sqlx::query_as(sql)
            .bind(customers[0])
            .bind(customers[1])
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((what, n.to_string()));
    }
    let responses: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM offer_responses WHERE msisdn = $1")
            .bind(M3)
            .fetch_one(pool)
            .await
            .unwrap();
    out.push(("offer answers", responses.0.to_string()));
    let recs: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, status, attempts FROM recommendations WHERE msisdn = $1 ORDER BY id",
    )
    .bind(M3)
    .fetch_all(pool)
    .await
    .unwrap();
    out.push(("offers", format!("{recs:?}")));
    out
}

/// The path with each `{param}` replaced: by name, else by the collection it follows.
fn fill(path: &str, f: &Foreign, other_ent: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push(seg.to_string());
            continue;
        };
        let parent = if i > 0 { segs[i - 1] } else { "" };
        let value = if name == "id" && parent == "customers" && path.contains("/members") {
            other_ent.to_string()
        } else if name == "id" {
            f.ids.get(parent).cloned().unwrap_or_else(|| MISSING.into())
        } else {
            f.ids.get(name).cloned().unwrap_or_else(|| MISSING.into())
        };
        out.push(value);
    }
    out.join("/")
}

/// Query parameters the document lists whose names we have a foreign value for.
fn query(op: &Value, f: &Foreign) -> String {
    let mut q: Vec<String> = Vec::new();
    for p in op["parameters"].as_array().into_iter().flatten() {
        if p["in"] != "query" {
            continue;
        }
        let name = p["name"].as_str().unwrap_or_default();
        let value = match name {
            "status" => Some("2".to_string()),
            _ => f.ids.get(name).cloned(),
        };
        if let Some(v) = value {
            q.push(format!("{name}={v}"));
        }
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

struct Outcome {
    status: u16,
    body: String,
}

async fn call(t: &TestApp, method: &str, url: &str, token: &str, write: &Value) -> Outcome {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut req = t
        .http
        .request(m.clone(), format!("{}{url}", t.base))
        .bearer_auth(token);
    // Writes name the foreign customer: a scoped caller must not create or change its data.
    if m == Method::POST {
        req = req.json(write);
    } else if m == Method::PATCH || m == Method::PUT {
        req = req.json(&json!({"version": 1}));
    }
    let mut resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let streaming = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = if streaming {
        // A live stream never ends: take what the first moments bring, then hang up.
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(300);
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
            got.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&got).into_owned()
    } else {
        resp.text().await.unwrap_or_default()
    };
    Outcome { status, body }
}

/// Every documented operation, called by every role with the foreign customer's ids. On both
/// databases: it takes a few seconds each, and a 5xx can be one backend's SQL.
#[tokio::test]
async fn every_documented_route_keeps_scoped_roles_out_of_other_customers_data() {
    on_both(async |t| walk(t).await).await;
}

async fn walk(t: &TestApp) {
    let w = world(t).await;
    let f = foreign_records(t, &w).await;
    let doc = t.get(ADMIN_KEY, "/api/v1/openapi.json").await.expect(200);
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    assert!(
        ops.len() > 100,
        "the document lists {} operations",
        ops.len()
    );
    // Logging out ends the caller's session: do it last.
    ops.sort_by_key(|(m, p, _)| (p == "/api/v1/auth/logout", p.clone(), m.clone()));
    let scoped: Vec<(&str, &Actor)> = vec![
        ("account_manager", &w.am1),
        ("team_lead", &w.lead),
        ("region_head", &w.head),
        ("agent", &w.agent),
        ("enterprise_admin", &w.ent_admin),
    ];
    let all_scope: Vec<(&str, &str)> = vec![
        ("marketer", w.marketer.token.as_str()),
        ("system", w.system.token.as_str()),
        ("admin", ADMIN_KEY),
    ];
    let write = json!({"customer_id": w.c3, "msisdn": M3});
    let mut failures = Vec::new();
    let mut ok_calls = 0;
    // Whatever answer a scoped caller's write got, it must leave the foreign records as they
    // were: compared once the scoped roles are through, before the all-scope ones may write.
    let untouched = foreign_writes(t, &w).await;
    let mut compared = false;
    // Scoped roles first: all-scope callers may change the fixture (delete a contact, ...).
    let callers = scoped
        .iter()
        .map(|(r, a)| (*r, a.token.as_str(), true))
        .chain(all_scope.iter().map(|(r, k)| (*r, *k, false)));
    for (role, token, is_scoped) in callers {
        if !is_scoped && !compared {
            compared = true;
            let now = foreign_writes(t, &w).await;
            if now != untouched {
                failures.push(format!(
                    "scoped roles changed other customers' records: {untouched:?} -> {now:?}"
                ));
            }
        }
        for (method, path, op) in &ops {
            let url = format!("{}{}", fill(path, &f, &w.other_ent), query(op, &f));
            let out = call(t, method, &url, token, &write).await;
            if out.status >= 500 {
                failures.push(format!(
                    "{role} {method} {url}: {} {}",
                    out.status, out.body
                ));
                continue;
            }
            if (200..300).contains(&out.status) {
                ok_calls += 1;
                // One time format on output, whatever wrote the time.
                if let Ok(v) = serde_json::from_str::<Value>(&out.body) {
                    let mut bad = Vec::new();
                    odd_times(&v, "", &mut bad);
                    if !bad.is_empty() {
                        failures.push(format!("{role} {method} {url} writes times {bad:?}"));
                    }
                }
            }
            if !is_scoped {
                continue;
            }
            // An error may echo what the caller sent; a success must not show foreign data.
            let mut shown = out.body.clone();
            if !(200..300).contains(&out.status) {
                shown = shown.replace(&url, "");
                for v in f.ids.values() {
                    if url.contains(v.as_str()) {
                        shown = shown.replace(v.as_str(), "");
                    }
                }
                shown = shown.replace(M3, "");
            }
            for m in &f.markers {
                if shown.contains(m.as_str()) {
                    failures.push(format!(
                        "{role} {method} {url} ({}) shows {m}: {}",
                        out.status, out.body
                    ));
                }
            }
        }
    }
    assert!(
        ok_calls > 50,
        "too few calls succeeded ({ok_calls}): is the walk calling anything?"
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Times in `v` not written the one way (RFC 3339, UTC, milliseconds: `2026-11-23T00:15:00.000Z`),
/// each with where it stands. Dates (`YYYY-MM-DD`) are dates, not times.
fn odd_times(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            let looks_like_time = b.len() >= 16
                && b[..4].iter().all(u8::is_ascii_digit)
                && b[4] == b'-'
                && b[7] == b'-'
                && (b[10] == b'T' || b[10] == b' ')
                && b[13] == b':';
            let one_way = b.len() == 24
                && b[10] == b'T'
                && b[19] == b'.'
                && b[23] == b'Z'
                && chrono::DateTime::parse_from_rfc3339(s).is_ok();
            if looks_like_time && !one_way {
                out.push(format!("{at}={s}"));
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                odd_times(x, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                odd_times(x, &format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn odd_times_finds_every_other_way_of_writing_a_time() {
    let v = json!({"a": "2026-11-23T00:15:00.000Z", "d": "2026-11-23", "n": "a name",
        "list": [{"b": "2026-11-23T08:15:00+08:00"}, {"c": "2026-11-23T00:15:00.123456789Z"}],
        "e": "2026-11-23 00:15:00"});
    let mut bad = Vec::new();
    odd_times(&v, "", &mut bad);
    bad.sort();
    assert_eq!(
        bad,
        [
            ".e=2026-11-23 00:15:00",
            ".list[0].b=2026-11-23T08:15:00+08:00",
            ".list[1].c=2026-11-23T00:15:00.123456789Z"
        ]
    );
}

#[tokio::test]
async fn dead_letters_need_an_all_customers_role() {
    on_both(async |t| {
        let w = world(t).await;
        let payload = format!(r#"{{"type":"nope","msisdn":"{M3}"}}"#);
        let dl = &t.app.state.pipeline.deps.dead_letters;
        dl.put("http", None, "unknown event type", payload.as_bytes())
            .await
            .unwrap();
        for scoped in [&w.lead, &w.head] {
            let r = t.get(&scoped.token, "/api/v1/dead-letters").await;
            assert_eq!(r.status, 403, "{}", r.body);
            assert!(!r.body.to_string().contains(M3));
        }
        for key in [w.marketer.token.as_str(), t.admin()] {
            let page = t.get(key, "/api/v1/dead-letters").await.expect(200);
            assert_eq!(page["total"], 1);
            assert!(page["items"][0]["payload"].as_str().unwrap().contains(M3));
        }
    })
    .await;
}

#[tokio::test]
async fn sms_outbox_follows_line_scope() {
    on_both(async |t| {
        let w = world(t).await;
        let outbox = t
            .app
            .state
            .channels
            .sms_outbox
            .clone()
            .expect("outbox mode");
        for (i, m) in ["8613900001001", "8613900001002", M3].iter().enumerate() {
            outbox.send(&sms_rec(&format!("rec-{i}"), m)).unwrap();
        }
        // Team T1's lead sees T1's lines one number at a time, never T2's.
        t.get(&w.lead.token, "/api/v1/channels/sms/outbox")
            .await
            .expect_field("to");
        let own = t
            .get(
                &w.lead.token,
                "/api/v1/channels/sms/outbox?to=8613900001002",
            )
            .await
            .expect(200);
        assert_eq!(own["items"].as_array().unwrap().len(), 1);
        assert_eq!(own["items"][0]["to"], "8613900001002");
        let r = t
            .get(
                &w.lead.token,
                &format!("/api/v1/channels/sms/outbox?to={M3}"),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = t
            .get(
                &w.head.token,
                &format!("/api/v1/channels/sms/outbox?to={M3}"),
            )
            .await;
        assert_eq!(r.status, 404, "East's head does not see West's line");
        // Operations (all customers) see the whole outbox.
        let all = t
            .get(&w.marketer.token, "/api/v1/channels/sms/outbox")
            .await
            .expect(200);
        assert_eq!(all["items"].as_array().unwrap().len(), 3);
        assert_eq!(all["total"], 3);
    })
    .await;
}
