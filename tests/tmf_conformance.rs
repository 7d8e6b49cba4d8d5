//! TMF680 / TMF681 as served, checked against the official v4 swagger files in `tests/tmf`:
//! resources, lists, errors, hub registrations and the events a real HTTP listener receives.
//!
//! The swagger `definitions` are used as JSON Schema (draft 4, which swagger 2.0 schemas are)
//! with the definitions at the root so `#/definitions/X` resolves. They are also made strict
//! (`additionalProperties: false`): an attribute we serve that v4 does not define fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common;
use crate::real_engine;

use common::world::world;
use common::{on_both, TestApp};
use kairos::ports::{Recommendation, Status};
use real_engine::on_both_engine;
use serde_json::{json, Value};

const TMF680: &str = "/tmf-api/recommendationManagement/v4";
const TMF681: &str = "/tmf-api/communicationManagement/v4";

fn spec(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tmf")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every object definition closed to attributes it does not declare.
fn strict(defs: &mut Value) {
    for def in defs.as_object_mut().unwrap().values_mut() {
        if def.get("properties").is_some() && def.get("additionalProperties").is_none() {
            def["additionalProperties"] = json!(false);
        }
    }
}

struct Spec {
    defs: Value,
}

impl Spec {
    fn tmf680() -> Spec {
        let mut defs = spec("TMF680-Recommendation-v4.0.0.swagger.json")["definitions"].clone();
        strict(&mut defs);
        Spec { defs }
    }

    /// TMF681 v4 defines no event resources; its state change event is the generic TMF
    /// event structure (as TMF680 defines it) carrying a `communicationMessage`.
    fn tmf681() -> Spec {
        let mut defs = spec("TMF681-Communication-v4.0.0.swagger.json")["definitions"].clone();
        let mut event = spec("TMF680-Recommendation-v4.0.0.swagger.json")["definitions"]
            ["QueryProductRecommendationStateChangeEvent"]
            .clone();
        event["properties"]["event"] = json!({
            "type": "object",
            "required": ["communicationMessage"],
            "properties": {"communicationMessage": {"$ref": "#/definitions/CommunicationMessage"}}
        });
        defs["CommunicationMessageStateChangeEvent"] = event;
        strict(&mut defs);
        Spec { defs }
    }

    #[track_caller]
    fn check(&self, definition: &str, v: &Value) {
        assert!(
            self.defs.get(definition).is_some(),
            "no definition {definition}"
        );
        let schema =
            json!({"$ref": format!("#/definitions/{definition}"), "definitions": self.defs});
        let validator = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the swagger definitions compile as JSON Schema");
        let errors: Vec<String> = validator
            .iter_errors(v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "not a valid {definition}:\n{}\n{v:#}",
            errors.join("\n")
        );
    }

    /// The check bites: `v` is not a valid `definition`.
    #[track_caller]
    fn rejects(&self, definition: &str, v: &Value) {
        let schema =
            json!({"$ref": format!("#/definitions/{definition}"), "definitions": self.defs});
        let validator = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        assert!(!validator.is_valid(v), "{definition} accepted {v:#}");
    }

    #[track_caller]
    fn check_list(&self, definition: &str, v: &Value) {
        let items = v.as_array().expect("a list");
        assert!(!items.is_empty(), "an empty list checks nothing");
        for item in items {
            self.check(definition, item);
        }
    }

    /// A TMF error with the status we expect, valid against `Error`.
    #[track_caller]
    fn error(&self, r: common::Resp, status: u16) -> Value {
        assert_eq!(r.status, status, "{}", r.body);
        self.check("Error", &r.body);
        assert_eq!(r.body["@type"], "Error");
        assert_eq!(r.body["status"], status.to_string());
        r.body
    }
}

/// An HTTP listener on port 0 recording what it is sent; it answers 500 to the first
/// `fail_first` calls so retries are exercised.
#[derive(Clone)]
struct Listener {
    url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn listener(fail_first: usize) -> Listener {
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rec = got.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(
            move |axum::extract::Path(path): axum::extract::Path<String>, body: String| {
                let rec = rec.clone();
                let calls = calls.clone();
                async move {
                    if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail_first {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let v = serde_json::from_str(&body).unwrap_or(Value::Null);
                    rec.lock().unwrap().push((path, v));
                    axum::http::StatusCode::CREATED
                }
            },
        ),
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(tcp, app).await });
    Listener { url, got }
}

impl Listener {
    /// Waits for an event on `path` that satisfies `pred`.
    async fn wait_for(&self, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            if let Some((_, v)) = self
                .got
                .lock()
                .unwrap()
                .iter()
                .find(|(p, v)| p == path && pred(v))
            {
                return v.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no matching event on /{path}; got {:?}",
            self.got.lock().unwrap()
        );
    }
    fn on(&self, path: &str) -> Vec<Value> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// GET with the headers (the harness's `Resp` keeps none).
async fn get_with_headers(
    t: &TestApp,
    token: &str,
    path: &str,
) -> (reqwest::header::HeaderMap, Value) {
    let r = t
        .http
        .get(format!("{}{}", t.base, path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let headers = r.headers().clone();
    (headers, r.json().await.unwrap())
}

fn count(h: &reqwest::header::HeaderMap, name: &str) -> i64 {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn engine_offer(id: &str, msisdn: &str, code: &str) -> Recommendation {
    let now = chrono::Utc::now().fixed_offset();
    Recommendation {
        id: id.into(),
        msisdn: msisdn.parse().unwrap(),
        rule_id: "roaming".into(),
        offer_code: code.into(),
        channel: "sms".into(),
        message: "m".into(),
        score: 0.8,
        trigger_event_id: Some("e1".into()),
        campaign_id: None,
        request_id: None,
        decided_at: now,
        expires_at: now + chrono::Duration::days(2),
        not_before: None,
        status: Status::Queued,
        reason: None,
        explanation: None,
        service: false,
    }
}

#[tokio::test]
async fn tmf680_resources_errors_and_hub_events_match_the_v4_schemas() {
    on_both(async |t| {
        let spec = Spec::tmf680();
        let w = world(t).await;
        let ears = listener(1).await;
        let hub = format!("{TMF680}/hub");

        // Registration: 201 with an EventSubscription; only http(s) callbacks, only callers
        // that may read recommendations, TMF errors otherwise.
        let sub = t
            .post(
                &w.agent.token,
                &hub,
                json!({"callback": format!("{}/agent", ears.url), "query": "eventType=QueryProductRecommendationCreateEvent"}),
            )
            .await
            .expect(201);
        spec.check("EventSubscription", &sub);
        assert_eq!(sub["callback"], format!("{}/agent", ears.url));
        // am3 (West) sees none of c1's lines: registered, but told nothing about them.
        t.post(&w.am3.token, &hub, json!({"callback": format!("{}/west", ears.url)}))
            .await
            .expect(201);
        // Filtered out by its query.
        t.post(
            t.admin(),
            &hub,
            json!({"callback": format!("{}/other", ears.url), "query": "eventType=SomethingElse"}),
        )
        .await
        .expect(201);
        let bad = spec.error(
            t.post(t.admin(), &hub, json!({"callback": "ftp://files.example/x"})).await,
            400,
        );
        assert!(bad["message"].as_str().unwrap().contains("callback"), "{bad}");
        spec.error(t.post(t.admin(), &hub, json!({"query": "x=1"})).await, 400);
        spec.error(t.post(t.admin(), &hub, json!({"callback": "https://a.example", "query": "nonsense"})).await, 400);
        spec.error(t.post("not-a-token", &hub, json!({"callback": "https://a.example"})).await, 401);
        spec.error(
            t.post(&w.ent_admin.token, &hub, json!({"callback": "https://a.example"})).await,
            403,
        );

        // A query answered through the API: 201 with the resource, as v4 defines it.
        let po = t
            .post(
                t.admin(),
                "/api/v1/catalog/offerings",
                json!({"code": "ROAM_JP", "name": "Japan roaming pass", "offering_type": "addon", "price_cents": 3000}),
            )
            .await
            .expect(201);
        t.offers
            .recs
            .lock()
            .unwrap()
            .push(engine_offer("r-high", "8613900001001", "ROAM_JP"));
        let q = t
            .post(
                &w.agent.token,
                &format!("{TMF680}/queryProductRecommendation"),
                json!({"name": "at the counter", "relatedParty": {"id": w.c1, "@referredType": "Customer"},
                    "@type": "QueryProductRecommendation"}),
            )
            .await
            .expect(201);
        spec.check("QueryProductRecommendation", &q);
        assert_eq!(q["relatedParty"]["id"], w.c1.as_str());
        // What the resource looked like before v4 conformance would not pass.
        let mut old = q.clone();
        old["relatedParty"] = json!([q["relatedParty"]]);
        spec.rejects("QueryProductRecommendation", &old);
        let mut old = q.clone();
        old["creationDate"] = json!("2026-01-01T00:00:00Z");
        spec.rejects("QueryProductRecommendation", &old);
        let mut old = q.clone();
        old["recommendationItem"][0].as_object_mut().unwrap().remove("product");
        spec.rejects("QueryProductRecommendation", &old);
        assert_eq!(q["recommendationItem"][0]["productOffering"]["id"], po["code"]);
        let qid = q["id"].as_str().unwrap().to_string();
        let href = q["href"].as_str().unwrap().to_string();
        spec.check("QueryProductRecommendation", &t.get(&w.agent.token, &href).await.expect(200));

        // Lists: headers, paging, fields.
        t.post(
            t.admin(),
            &format!("{TMF680}/queryProductRecommendation"),
            json!({"relatedParty": {"id": "8613900001001"}}),
        )
        .await
        .expect(201);
        let (h, all) = get_with_headers(t, t.admin(), &format!("{TMF680}/queryProductRecommendation")).await;
        spec.check_list("QueryProductRecommendation", &all);
        assert_eq!((count(&h, "x-total-count"), count(&h, "x-result-count")), (2, 2));
        let (h, page) =
            get_with_headers(t, t.admin(), &format!("{TMF680}/queryProductRecommendation?limit=1&offset=1")).await;
        assert_eq!((count(&h, "x-total-count"), count(&h, "x-result-count")), (2, 1));
        assert_eq!(page[0]["id"], qid.as_str(), "oldest last");
        let (_, slim) =
            get_with_headers(t, t.admin(), &format!("{TMF680}/queryProductRecommendation/{qid}?fields=name")).await;
        let mut keys: Vec<&str> = slim.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["@type", "href", "id", "name"]);
        spec.check("QueryProductRecommendation", &slim);

        // Errors on these routes are TMF errors; elsewhere our own body stays.
        spec.error(t.get(t.admin(), &format!("{TMF680}/queryProductRecommendation/nope")).await, 404);
        spec.error(t.patch(t.admin(), &href, json!({"state": "done"})).await, 405);
        spec.error(t.get("", &format!("{TMF680}/queryProductRecommendation")).await, 401);
        let e = spec.error(
            t.post(t.admin(), &format!("{TMF680}/queryProductRecommendation"), json!({"name": "x"})).await,
            400,
        );
        assert!(e["message"].as_str().unwrap().starts_with("relatedParty"), "{e}");
        let ours = t.get(t.admin(), "/api/v1/customers/nope").await.expect(404);
        assert!(ours.get("error").is_some() && ours.get("@type").is_none(), "{ours}");

        // An offer the engine makes on its own is announced too, under its own href.
        t.store_rec(&engine_offer("r-engine", "8613900001001", "ROAM_JP")).await;
        let created = ears
            .wait_for("agent", |v| v["event"]["queryProductRecommendation"]["id"] == "r-engine")
            .await;
        spec.check("QueryProductRecommendationCreateEvent", &created);
        assert_eq!(created["eventType"], "QueryProductRecommendationCreateEvent");
        assert!(created["eventId"].is_string() && created["eventTime"].is_string());
        let engine_href = created["event"]["queryProductRecommendation"]["href"].as_str().unwrap();
        let served = t.get(&w.agent.token, engine_href).await.expect(200);
        spec.check("QueryProductRecommendation", &served);
        assert_eq!(served["recommendationItem"][0]["id"], "r-engine");
        assert_eq!(served["instantSyncRecommendation"], false);
        t.get(&w.am3.token, engine_href).await.expect(404);

        // The API-made query's event, delivered despite the listener's first 500.
        let asked = ears
            .wait_for("agent", |v| v["event"]["queryProductRecommendation"]["id"] == qid.as_str())
            .await;
        spec.check("QueryProductRecommendationCreateEvent", &asked);
        let (attempts,): (i64,) = sqlx::query_as("SELECT MAX(attempts) FROM tmf_hub_deliveries")
            .fetch_one(&t.app.state.db.pool)
            .await
            .unwrap();
        assert!(attempts >= 2, "the failed first post was retried: {attempts}");
        // Later status changes of the offer do not announce it again.
        t.app.state.pipeline.deps.recs.set_status("r-engine", Status::Sent, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let agent_events = ears.on("agent");
        assert_eq!(
            agent_events
                .iter()
                .filter(|v| v["event"]["queryProductRecommendation"]["id"] == "r-engine")
                .count(),
            1,
            "{agent_events:?}"
        );
        assert!(ears.on("west").is_empty(), "out of scope: {:?}", ears.on("west"));
        assert!(ears.on("other").is_empty(), "filtered: {:?}", ears.on("other"));

        // Unregistering: 204, then it is gone; only its owner (or an admin) may remove it.
        let sid = sub["id"].as_str().unwrap();
        spec.error(t.delete(&w.am3.token, &format!("{hub}/{sid}")).await, 404);
        assert_eq!(t.delete(&w.agent.token, &format!("{hub}/{sid}")).await.status, 204);
        spec.error(t.delete(&w.agent.token, &format!("{hub}/{sid}")).await, 404);
    })
    .await;
}

#[tokio::test]
async fn tmf681_messages_and_state_change_events_match_the_v4_schemas() {
    on_both_engine(async |t| {
        let spec = Spec::tmf681();
        let w = world(t).await;
        let ears = listener(0).await;
        let hub = format!("{TMF681}/hub");
        let msgs = format!("{TMF681}/communicationMessage");
        let sub = t
            .post(
                &w.am1.token,
                &hub,
                json!({"callback": format!("{}/am1", ears.url), "query": "eventType=CommunicationMessageStateChangeEvent"}),
            )
            .await
            .expect(201);
        spec.check("EventSubscription", &sub);
        spec.error(t.post(t.admin(), &hub, json!({"callback": "mailto:ops@example.com"})).await, 400);

        let body = json!({"content": "Your bill is ready", "messageType": "SMS",
            "sender": {"id": "10086", "name": "Kairos"}, "receiver": [{"phoneNumber": "8613900001001"}],
            "@type": "CommunicationMessage"});
        spec.check("CommunicationMessage_Create", &body);
        let sent = t.post(&w.am1.token, &msgs, body.clone()).await.expect(201);
        spec.check("CommunicationMessage", &sent);
        let mut old = sent.clone();
        old["state"] = json!("sent");
        spec.rejects("CommunicationMessage", &old);
        assert!(matches!(sent["state"].as_str(), Some("inProgress" | "completed")), "{sent}");
        let id = sent["id"].as_str().unwrap().to_string();
        spec.check("CommunicationMessage", &t.get(&w.am1.token, &format!("{msgs}/{id}")).await.expect(200));
        let (h, list) = get_with_headers(t, &w.am1.token, &msgs).await;
        spec.check_list("CommunicationMessage", &list);
        assert_eq!((count(&h, "x-total-count"), count(&h, "x-result-count")), (1, 1));
        let (_, slim) = get_with_headers(t, &w.am1.token, &format!("{msgs}?fields=state")).await;
        let keys: Vec<&String> = slim[0].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{slim}");
        spec.check_list("CommunicationMessage", &slim);

        // The channel reports a failure later: the message follows, and the listener hears.
        let rec_id = sent["characteristic"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "recommendationId")
            .and_then(|c| c["value"].as_str())
            .expect("recommendation id")
            .to_string();
        t.app
            .state
            .pipeline
            .deps
            .recs
            .set_status(&rec_id, Status::Failed, Some("absent_subscriber"))
            .await
            .unwrap();
        let failed = ears
            .wait_for("am1", |v| {
                v["event"]["communicationMessage"]["id"] == id.as_str()
                    && v["event"]["communicationMessage"]["state"] == "failed"
            })
            .await;
        spec.check("CommunicationMessageStateChangeEvent", &failed);
        assert_eq!(failed["eventType"], "CommunicationMessageStateChangeEvent");
        assert!(failed["event"]["communicationMessage"]["characteristic"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "statusReason" && c["value"] == "absent_subscriber"));
        let now = t.get(&w.am1.token, &format!("{msgs}/{id}")).await.expect(200);
        assert_eq!(now["state"], "failed");
        for e in ears.on("am1") {
            spec.check("CommunicationMessageStateChangeEvent", &e);
        }

        // A scheduled message cancelled by PATCH is a state change too.
        let mut later = body.clone();
        later["scheduledSendTime"] = json!((chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339());
        let s = t.post(&w.am1.token, &msgs, later).await.expect(201);
        spec.check("CommunicationMessage", &s);
        let sid = s["id"].as_str().unwrap().to_string();
        let cancelled = t
            .patch(&w.am1.token, &format!("{msgs}/{sid}"), json!({"state": "cancelled"}))
            .await
            .expect(200);
        spec.check("CommunicationMessage", &cancelled);
        let ev = ears
            .wait_for("am1", |v| v["event"]["communicationMessage"]["id"] == sid.as_str())
            .await;
        assert_eq!(ev["event"]["communicationMessage"]["state"], "cancelled");
        spec.check("CommunicationMessageStateChangeEvent", &ev);

        // TMF errors: validation, conflict, scope, auth.
        let mut b = body.clone();
        b.as_object_mut().unwrap().remove("receiver");
        spec.error(t.post(&w.am1.token, &msgs, b).await, 400);
        spec.error(t.patch(&w.am1.token, &format!("{msgs}/{id}"), json!({"content": "x"})).await, 409);
        spec.error(t.get(&w.am3.token, &format!("{msgs}/{id}")).await, 404);
        spec.error(t.post(&w.agent.token, &msgs, body.clone()).await, 403);
        spec.error(t.get("", &msgs).await, 401);
        let sub_id = sub["id"].as_str().unwrap();
        assert_eq!(t.delete(&w.am1.token, &format!("{hub}/{sub_id}")).await.status, 204);
        // A TMF680 id is not a TMF681 listener.
        spec.error(t.delete(t.admin(), &format!("{TMF680}/hub/{sub_id}")).await, 404);
    })
    .await;
}
