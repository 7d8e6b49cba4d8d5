//! Agreements (合同) and the contract reminder job: the account manager gets a notice, the
//! engine a `contract_expiring` event, once per contract period.

use crate::common;

use chrono::{DateTime, Utc};
use common::on_both;
use common::world::{id, world};
use kairos::crm::agreements::reminders::run_once;
use serde_json::json;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn contract_reminder_reaches_the_manager_and_the_engine_once() {
    on_both(async |t| {
        let w = world(t).await;
        let st = &t.app.state;
        // Validation and scope on create.
        t.post(&w.agent.token, "/api/v1/agreements", json!({"customer_id": w.c1, "name": "x", "start_date": "2026-01-01", "end_date": "2027-01-31"})).await.expect(403);
        t.post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.c3, "name": "x", "start_date": "2026-01-01", "end_date": "2027-01-31"})).await.expect_field("customer_id");
        t.post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.c1, "name": "x", "start_date": "2026-01-01", "end_date": "2025-01-31"})).await.expect_field("end_date");
        let g = t
            .post(&w.am1.token, "/api/v1/agreements", json!({
                "customer_id": w.c1, "name": "5G family plan", "start_date": "2026-02-01", "end_date": "2027-01-31",
                "reminder_days": 30, "document_ref": "s3://contracts/c1-2026.pdf", "amount_cents": 120000}))
            .await
            .expect(201);
        assert_eq!(g["status"], "active");
        assert_eq!(g["reminded_for"], serde_json::Value::Null);
        let gid = id(&g);
        // A contract of a customer without lines: notice only, no event.
        let g2 = t
            .post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.ent, "name": "Enterprise frame", "start_date": "2026-01-01", "end_date": "2027-01-20", "reminder_days": 20, "agreement_type": "framework"}))
            .await
            .expect(201);
        // A draft is never reminded.
        t.post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.c1, "name": "draft", "status": "draft", "start_date": "2026-01-01", "end_date": "2027-01-10"})).await.expect(201);
        // Another manager's contract.
        let g3 = t
            .post(&w.am3.token, "/api/v1/agreements", json!({"customer_id": w.c3, "name": "west", "start_date": "2026-01-01", "end_date": "2027-01-25"}))
            .await
            .expect(201);

        // Scope: am2 and am1 do not see each other's contracts.
        t.get(&w.am2.token, &format!("/api/v1/agreements/{gid}")).await.expect(404);
        t.get(&w.am1.token, &format!("/api/v1/agreements/{}", id(&g3))).await.expect(404);
        assert_eq!(t.get(&w.am2.token, "/api/v1/agreements").await.expect(200)["total"], 0);
        assert_eq!(t.get(&w.am1.token, "/api/v1/agreements").await.expect(200)["total"], 3);
        assert_eq!(t.get(&w.lead.token, "/api/v1/agreements").await.expect(200)["total"], 3);
        t.patch(&w.am2.token, &format!("/api/v1/agreements/{gid}"), json!({"name": "x", "version": 1})).await.expect(404);

        // am1 has a phone number for SMS notifications; am3 has none.
        t.patch(t.admin(), &format!("/api/v1/users/{}", w.am1.id), json!({"phone": "not a number"})).await.expect(400);
        let user = t.get(t.admin(), &format!("/api/v1/users/{}", w.am1.id)).await.expect(200);
        let v = user["version"].as_i64().unwrap();
        let user = t.patch(t.admin(), &format!("/api/v1/users/{}", w.am1.id), json!({"phone": "8613800000001", "version": v})).await.expect(200);
        assert_eq!(user["phone"], "8613800000001");

        // Outside the threshold: nothing.
        let run = run_once(st, at("2026-12-01T09:00:00Z")).await.unwrap();
        assert!(run.reminded.is_empty(), "{run:?}");
        assert!(t.events.take().is_empty());

        // Inside: the active contracts of am1 and am3 are reminded.
        let run = run_once(st, at("2027-01-05T09:00:00Z")).await.unwrap();
        assert_eq!(run.reminded.len(), 3, "{run:?}");
        let r1 = run.reminded.iter().find(|r| r.agreement_id == gid).unwrap();
        assert_eq!(r1.days_left, 26);
        assert_eq!(r1.notified_user_id.as_deref(), Some(w.am1.id.as_str()));
        assert!(r1.sms_requested);
        let r2 = run.reminded.iter().find(|r| r.agreement_id == id(&g2)).unwrap();
        assert_eq!(r2.event_id, None);
        let r3 = run.reminded.iter().find(|r| r.agreement_id == id(&g3)).unwrap();
        assert_eq!(r3.notified_user_id.as_deref(), Some(w.am3.id.as_str()));
        assert!(!r3.sms_requested, "no phone, notice only");

        // SMS to am1's phone through the engine, one per contract.
        let sms = std::mem::take(&mut *t.offers.proposed.lock().unwrap());
        assert_eq!(sms.len(), 2, "{sms:?}");
        for r in &sms {
            assert_eq!(r.rule_id, "contract-reminder");
            assert_eq!(r.channels, ["sms"]);
            assert_eq!(r.msisdn.to_string(), "8613800000001");
        }
        assert!(sms.iter().any(|r| r.message.contains("5G family plan") && r.message.contains("2027-01-31")));

        // The engine got a contract_expiring event with the contract's attrs (and one for c3).
        let evs = t.events.take();
        assert_eq!(evs.len(), 2, "{evs:?}");
        let ev = evs.iter().find(|e| e.msisdn.to_string() == "8613900001001").unwrap();
        assert_eq!(ev.kind.as_str(), "contract_expiring");
        assert_eq!(ev.id.as_str(), format!("contract-{gid}-2027-01-31"));
        assert_eq!(ev.msisdn.to_string(), "8613900001001");
        assert_eq!(ev.attr("contract_id").and_then(|v| v.as_str()), Some(gid.as_str()));
        assert_eq!(ev.attr("days_left").and_then(|v| v.as_f64()), Some(26.0));
        // It is a valid event by the ingest contract.
        let decoded = kairos::event::decode_value(&serde_json::to_value(ev).unwrap()).unwrap();
        assert_eq!(&decoded, ev);

        // The account manager's notices; nobody else's.
        let n = t.get(&w.am1.token, "/api/v1/notices?unread=true").await.expect(200);
        assert_eq!(n["total"], 2);
        let mine: Vec<&str> = n["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
        assert_eq!(mine, ["contract_reminder", "contract_reminder"]);
        let notice = n["items"].as_array().unwrap().iter().find(|i| i["entity_id"] == gid.as_str()).unwrap().clone();
        assert_eq!(notice["customer_id"], w.c1.as_str());
        assert_eq!(t.get(&w.am2.token, "/api/v1/notices").await.expect(200)["total"], 0);
        t.post(&w.am2.token, &format!("/api/v1/notices/{}/read", id(&notice)), json!({})).await.expect(404);
        let read = t.post(&w.am1.token, &format!("/api/v1/notices/{}/read", id(&notice)), json!({})).await.expect(200);
        assert!(read["read_at"].is_string());
        assert_eq!(t.get(&w.am1.token, "/api/v1/notices?unread=true").await.expect(200)["total"], 1);

        // Marked, with an audit record; re-running emits nothing more.
        let g = t.get(&w.am1.token, &format!("/api/v1/agreements/{gid}")).await.expect(200);
        assert_eq!(g["reminded_for"], "2027-01-31");
        let audit = t.get(t.admin(), &format!("/api/v1/audit?entity=agreement&entity_id={gid}&action=remind")).await.expect(200);
        assert_eq!(audit["total"], 1);
        assert_eq!(audit["items"][0]["actor_id"], "system:contract-reminder");
        let run = run_once(st, at("2027-01-06T09:00:00Z")).await.unwrap();
        assert!(run.reminded.is_empty());
        assert!(t.events.take().is_empty());
        assert!(t.offers.proposed.lock().unwrap().is_empty());
        assert_eq!(t.get(&w.am1.token, "/api/v1/notices").await.expect(200)["total"], 2);

        // Renewal: a new period is reminded again, with a new event id.
        let v = g["version"].as_i64().unwrap();
        t.patch(&w.am1.token, &format!("/api/v1/agreements/{gid}"), json!({"end_date": "2028-01-31", "version": v})).await.expect(200);
        let run = run_once(st, at("2028-01-10T09:00:00Z")).await.unwrap();
        assert!(run.reminded.iter().any(|r| r.agreement_id == gid && r.days_left == 21));
        let evs = t.events.take();
        assert!(evs.iter().any(|e| e.id.as_str() == format!("contract-{gid}-2028-01-31")), "{evs:?}");

        // The 360 view shows current contracts.
        let view = t.get(&w.am1.token, &format!("/api/v1/customers/{}/view", w.c1)).await.expect(200);
        assert_eq!(view["contracts"].as_array().unwrap().len(), 2);

        // Triggering the job over HTTP is for admins.
        t.post(&w.am1.token, "/api/v1/agreements/reminders/run", json!({})).await.expect(403);
        let r = t.post(t.admin(), "/api/v1/agreements/reminders/run", json!({})).await.expect(200);
        assert!(r["reminded"].is_array());
    })
    .await;
}

#[tokio::test]
async fn a_refused_event_is_retried_by_the_next_run() {
    on_both(async |t| {
        let w = world(t).await;
        let st = &t.app.state;
        let g = t
            .post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.c1, "name": "n", "start_date": "2026-01-01", "end_date": "2027-01-31"}))
            .await
            .expect(201);
        t.events.refuse(true);
        let run = run_once(st, at("2027-01-05T09:00:00Z")).await.unwrap();
        assert_eq!(run.reminded.len(), 1);
        assert_eq!(run.reminded[0].event_id, None);
        let g = t.get(&w.am1.token, &format!("/api/v1/agreements/{}", id(&g))).await.expect(200);
        assert_eq!(g["reminded_for"], serde_json::Value::Null, "unmarked for a retry");
        t.events.refuse(false);
        let run = run_once(st, at("2027-01-05T10:00:00Z")).await.unwrap();
        assert_eq!(run.reminded[0].event_id.as_deref(), Some(format!("contract-{}-2027-01-31", id(&g)).as_str()));
        assert_eq!(t.events.take().len(), 1);
        assert!(run_once(st, at("2027-01-05T11:00:00Z")).await.unwrap().reminded.is_empty());
        assert!(t.events.take().is_empty());
    })
    .await;
}

#[tokio::test]
async fn periodic_job_runs_on_its_interval() {
    // The app spawns the same task with crm.reminder_interval_secs (3600 by default); here a
    // copy of the state with a 1 s interval shows the task runs the reminder job and stops.
    on_both(async |t| {
        let w = world(t).await;
        // An agreement due by the real clock (the task uses Utc::now()).
        let today = Utc::now().date_naive();
        let end = (today + chrono::Duration::days(5)).format("%Y-%m-%d").to_string();
        let g = t
            .post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.c1, "name": "soon", "start_date": "2026-01-01", "end_date": end, "reminder_days": 10}))
            .await
            .expect(201);
        assert!(t.events.take().is_empty());
        let mut st = t.app.state.clone();
        let mut config = (*st.config).clone();
        config.crm.reminder_interval_secs = 1;
        st.config = std::sync::Arc::new(config);
        let (stop, rx) = tokio::sync::watch::channel(false);
        kairos::crm::jobs::spawn(st, rx);
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(t.events.take());
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        stop.send(true).unwrap();
        assert_eq!(got.len(), 1, "the periodic job emitted the event");
        assert_eq!(got[0].id.as_str(), format!("contract-{}-{end}", id(&g)));
        // Later ticks do not repeat it.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert!(t.events.take().is_empty());
    })
    .await;
}
