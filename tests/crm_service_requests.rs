//! Service requests (业务申请 / 流程审批 / 业务处理): the configurable approval workflow,
//! processing with feedback, history, escalation of overdue requests and scope.

use crate::common;

use common::world::{id, world};
use common::{on_both, Actor, TestApp};
use kairos::crm::service_requests::escalation::run_escalations;
use serde_json::{json, Value};

async fn actions(t: &TestApp, who: &Actor, rid: &str) -> Vec<String> {
    let h = t
        .get(
            &who.token,
            &format!("/api/v1/service-requests/{rid}/history"),
        )
        .await
        .expect(200);
    h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["action"].as_str().unwrap(),
                e["to_status"].as_str().unwrap()
            )
        })
        .collect()
}

async fn notice_kinds(t: &TestApp, who: &Actor) -> Vec<String> {
    let n = t.get(&who.token, "/api/v1/notices").await.expect(200);
    n["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_string())
        .collect()
}

/// A team lead of am3's team (T2, West), outside T1's customers.
async fn west_lead(t: &TestApp, w: &common::world::World) -> Actor {
    let am3 = t
        .get(t.admin(), &format!("/api/v1/users/{}", w.am3.id))
        .await
        .expect(200);
    t.user("lead2", "team_lead", json!({"team_id": am3["team_id"]}))
        .await
}

#[tokio::test]
async fn multi_step_approval_processing_and_feedback() {
    on_both(async |t| {
        let w = world(t).await;
        let lead2 = west_lead(t, &w).await;
        // Marketers cannot raise requests; unknown types are rejected.
        t.post(&w.marketer.token, "/api/v1/service-requests", json!({"customer_id": w.c1, "request_type": "repair", "title": "x"})).await.expect(403);
        t.post(&w.agent.token, "/api/v1/service-requests", json!({"customer_id": w.c1, "request_type": "teleport", "title": "x"})).await.expect_field("request_type");
        // Cancellation needs team_lead then region_head.
        let r = t
            .post(&w.agent.token, "/api/v1/service-requests", json!({"customer_id": w.c1, "request_type": "cancellation", "title": "Cancel line 1001", "priority": "high"}))
            .await
            .expect(201);
        assert_eq!(r["status"], "pending_approval");
        assert_eq!(r["approval_steps"], json!(["team_lead", "region_head"]));
        assert_eq!(r["current_step"], 0);
        assert_eq!(r["escalated"], false);
        let rid = id(&r);
        let p = format!("/api/v1/service-requests/{rid}");

        // No approval permission: 403. Wrong role for the step: 403. Out of scope: 404.
        t.post(&w.am1.token, &format!("{p}/approve"), json!({})).await.expect(403);
        t.post(&w.head.token, &format!("{p}/approve"), json!({})).await.expect(403);
        t.post(&lead2.token, &format!("{p}/approve"), json!({})).await.expect(404);
        t.post(&lead2.token, &format!("{p}/reject"), json!({})).await.expect(404);
        // Processing before approval is not allowed.
        t.post(&w.am1.token, &format!("{p}/transition"), json!({"to": "in_progress"})).await.expect(409);

        let r = t.post(&w.lead.token, &format!("{p}/approve"), json!({"note": "ok by T1"})).await.expect(200);
        assert_eq!(r["status"], "pending_approval");
        assert_eq!(r["current_step"], 1);
        t.post(&w.lead.token, &format!("{p}/approve"), json!({})).await.expect(403);
        // An empty body works too.
        let resp = t.call(reqwest::Method::POST, &format!("{p}/approve"), Some(&w.head.token), None, None).await;
        let r = resp.expect(200);
        assert_eq!(r["status"], "in_progress");
        t.post(&w.head.token, &format!("{p}/approve"), json!({})).await.expect(409);
        t.post(&w.head.token, &format!("{p}/reject"), json!({})).await.expect(409);

        // Resolve needs feedback, which reaches the requester.
        t.post(&w.am1.token, &format!("{p}/transition"), json!({"to": "resolved"})).await.expect_field("feedback");
        t.post(&w.am1.token, &format!("{p}/transition"), json!({"to": "closed"})).await.expect(409);
        let r = t.post(&w.am1.token, &format!("{p}/transition"), json!({"to": "resolved", "feedback": "Line 1001 cancelled, final bill on the 28th"})).await.expect(200);
        assert_eq!(r["feedback"], "Line 1001 cancelled, final bill on the 28th");
        assert!(r["resolved_at"].is_string());
        let r = t.post(&w.agent.token, &format!("{p}/transition"), json!({"to": "closed"})).await.expect(200);
        assert_eq!(r["status"], "closed");
        t.post(&w.agent.token, &format!("{p}/transition"), json!({"to": "in_progress"})).await.expect(409);
        t.post(&w.agent.token, &format!("{p}/transition"), json!({"to": "cancelled"})).await.expect(409);

        assert_eq!(
            actions(t, &w.agent, &rid).await,
            [
                "create:acknowledged",
                "submit:pending_approval",
                "approve:pending_approval",
                "approve:in_progress",
                "transition:resolved",
                "transition:closed"
            ]
        );
        let h = t.get(&w.agent.token, &format!("{p}/history")).await.expect(200);
        assert_eq!(h["items"][2]["actor_id"], w.lead.id.as_str());
        assert_eq!(h["items"][2]["note"], "ok by T1");
        assert_eq!(h["items"][3]["actor_id"], w.head.id.as_str());
        // The requester heard about the approval and the resolution.
        assert_eq!(notice_kinds(t, &w.agent).await, ["feedback", "approval"]);
        let n = t.get(&w.agent.token, "/api/v1/notices?kind=feedback").await.expect(200);
        assert_eq!(n["items"][0]["body"], "Line 1001 cancelled, final bill on the 28th");

        // Reject: suspension needs one team_lead step.
        let s = t
            .post(&w.am1.token, "/api/v1/service-requests", json!({"customer_id": w.c1, "request_type": "suspension", "title": "Suspend while abroad"}))
            .await
            .expect(201);
        let sp = format!("/api/v1/service-requests/{}", id(&s));
        let s = t.post(&w.lead.token, &format!("{sp}/reject"), json!({"note": "debt outstanding"})).await.expect(200);
        assert_eq!(s["status"], "rejected");
        assert_eq!(s["feedback"], "debt outstanding");
        t.post(&w.lead.token, &format!("{sp}/approve"), json!({})).await.expect(409);
        assert_eq!(notice_kinds(t, &w.am1).await, ["approval"]);
        assert_eq!(actions(t, &w.am1, &id(&s)).await, ["create:acknowledged", "submit:pending_approval", "reject:rejected"]);

        // Scope: another account manager sees neither request.
        t.get(&w.am2.token, &p).await.expect(404);
        t.get(&w.am2.token, &format!("{p}/history")).await.expect(404);
        t.post(&w.am2.token, &format!("{sp}/transition"), json!({"to": "cancelled"})).await.expect(404);
        assert_eq!(t.get(&w.am2.token, "/api/v1/service-requests").await.expect(200)["total"], 0);
        assert_eq!(t.get(&w.am1.token, "/api/v1/service-requests").await.expect(200)["total"], 2);
        assert_eq!(t.get(&w.am1.token, "/api/v1/service-requests?status=rejected").await.expect(200)["total"], 1);
        let audit = t.get(t.admin(), &format!("/api/v1/audit?entity=service_request&entity_id={rid}")).await.expect(200);
        assert_eq!(audit["total"], 5);
    })
    .await;
}

#[tokio::test]
async fn enterprise_admins_and_configurable_workflows() {
    on_both(async |t| {
        let w = world(t).await;
        // Repair needs no approval by default.
        let r = t
            .post(&w.ent_admin.token, "/api/v1/service-requests", json!({"customer_id": w.ent_child, "request_type": "repair", "title": "Office router down"}))
            .await
            .expect(201);
        assert_eq!(r["status"], "acknowledged");
        assert_eq!(r["approval_steps"], json!([]));
        t.post(&w.ent_admin.token, "/api/v1/service-requests", json!({"customer_id": w.other_ent, "request_type": "repair", "title": "x"})).await.expect_field("customer_id");
        let p = format!("/api/v1/service-requests/{}", id(&r));
        t.post(&w.ent_admin.token, &format!("{p}/transition"), json!({"to": "in_progress"})).await.expect(403);
        t.post(&w.ent_admin.token, &format!("{p}/approve"), json!({})).await.expect(403);
        // The account manager works it; the enterprise admin sees the progress.
        let r = t.post(&w.am1.token, &format!("{p}/transition"), json!({"to": "in_progress"})).await.expect(200);
        assert_eq!(r["assignee_id"], w.am1.id.as_str());
        assert_eq!(t.get(&w.ent_admin.token, &p).await.expect(200)["status"], "in_progress");
        let r = t.post(&w.ent_admin.token, &format!("{p}/transition"), json!({"to": "cancelled", "note": "fixed itself"})).await.expect(200);
        assert_eq!(r["status"], "cancelled");
        // The requester is told when someone else cancels; not when they cancel themselves.
        assert!(notice_kinds(t, &w.ent_admin).await.is_empty());

        // Workflows: listed for everyone, changed by admins only, applied to new requests.
        let wfs = t.get(&w.agent.token, "/api/v1/workflows").await.expect(200);
        let repair = wfs["items"].as_array().unwrap().iter().find(|x| x["request_type"] == "repair").unwrap().clone();
        assert_eq!(repair["steps"], json!([]));
        t.put(&w.lead.token, "/api/v1/workflows/repair", json!({"steps": ["team_lead"], "sla_hours": 4, "version": 1})).await.expect(403);
        t.put(t.admin(), "/api/v1/workflows/repair", json!({"steps": ["agent"], "sla_hours": 4, "version": 1})).await.expect_field("steps");
        t.put(t.admin(), "/api/v1/workflows/repair", json!({"steps": ["team_lead"], "sla_hours": 4, "version": 7})).await.expect(412);
        let wf = t.put(t.admin(), "/api/v1/workflows/repair", json!({"steps": ["team_lead", "admin"], "sla_hours": 4, "version": 1})).await.expect(200);
        assert_eq!(wf["version"], 2);
        let r = t
            .post(&w.ent_admin.token, "/api/v1/service-requests", json!({"customer_id": w.ent, "request_type": "repair", "title": "Again"}))
            .await
            .expect(201);
        assert_eq!(r["status"], "pending_approval");
        assert_eq!(r["sla_hours"], 4);
        let p = format!("/api/v1/service-requests/{}", id(&r));
        t.post(&w.lead.token, &format!("{p}/approve"), json!({})).await.expect(200);
        t.post(&w.head.token, &format!("{p}/approve"), json!({})).await.expect(403);
        let r = t.post(t.admin(), &format!("{p}/approve"), json!({})).await.expect(200);
        assert_eq!(r["status"], "in_progress");
        assert_eq!(notice_kinds(t, &w.ent_admin).await, ["approval"]);

        // Four eyes: a team lead who raises a request cannot approve its team-lead step.
        let own = t
            .post(&w.lead.token, "/api/v1/service-requests", json!({"customer_id": w.c1, "request_type": "cancellation", "title": "Cancel line 1002"}))
            .await
            .expect(201);
        let p = format!("/api/v1/service-requests/{}", id(&own));
        let resp = t.post(&w.lead.token, &format!("{p}/approve"), json!({})).await;
        assert_eq!(resp.status, 403, "{}", resp.body);
        assert!(resp.body["message"].as_str().unwrap().contains("other than its requester"));
        let r = t.post(t.admin(), &format!("{p}/approve"), json!({})).await.expect(200);
        assert_eq!(r["current_step"], 1);
    })
    .await;
}

fn plus_hours(v: &Value, h: i64) -> chrono::DateTime<chrono::Utc> {
    let created: chrono::DateTime<chrono::Utc> = v["created_at"].as_str().unwrap().parse().unwrap();
    created + chrono::Duration::hours(h)
}

#[tokio::test]
async fn overdue_requests_escalate_to_the_next_level() {
    on_both(async |t| {
        let w = world(t).await;
        let st = &t.app.state;
        // fault_report: no approval, 8 hours SLA.
        let r = t
            .post(
                &w.agent.token,
                "/api/v1/service-requests",
                json!({"customer_id": w.c1, "request_type": "fault_report", "title": "No signal"}),
            )
            .await
            .expect(201);
        let rid = id(&r);
        // Resolved requests are not escalated.
        let done = t
            .post(
                &w.am1.token,
                "/api/v1/service-requests",
                json!({"customer_id": w.c1, "request_type": "fault_report", "title": "Slow data"}),
            )
            .await
            .expect(201);
        let dp = format!("/api/v1/service-requests/{}", id(&done));
        t.post(
            &w.am1.token,
            &format!("{dp}/transition"),
            json!({"to": "in_progress"}),
        )
        .await
        .expect(200);
        t.post(
            &w.am1.token,
            &format!("{dp}/transition"),
            json!({"to": "resolved", "feedback": "cell fixed"}),
        )
        .await
        .expect(200);

        let run = run_escalations(st, plus_hours(&r, 7)).await.unwrap();
        assert!(run.escalated.is_empty());
        let run = run_escalations(st, plus_hours(&r, 9)).await.unwrap();
        assert_eq!(run.escalated.len(), 1, "{run:?}");
        assert_eq!(run.escalated[0].request_id, rid);
        assert_eq!(run.escalated[0].level, 1);
        assert_eq!(run.escalated[0].notified, vec![w.lead.id.as_str()]);
        // Same level again: nothing.
        assert!(run_escalations(st, plus_hours(&r, 10))
            .await
            .unwrap()
            .escalated
            .is_empty());
        assert_eq!(notice_kinds(t, &w.lead).await, ["escalation"]);
        assert!(notice_kinds(t, &w.head).await.is_empty());

        // Still open one SLA period later: the region head.
        let run = run_escalations(st, plus_hours(&r, 17)).await.unwrap();
        assert_eq!(run.escalated.len(), 1);
        assert_eq!(run.escalated[0].level, 2);
        assert_eq!(run.escalated[0].notified, vec![w.head.id.as_str()]);
        assert!(run_escalations(st, plus_hours(&r, 100))
            .await
            .unwrap()
            .escalated
            .is_empty());
        assert_eq!(notice_kinds(t, &w.head).await, ["escalation"]);

        let r = t
            .get(&w.am1.token, &format!("/api/v1/service-requests/{rid}"))
            .await
            .expect(200);
        assert_eq!(r["escalated"], true);
        assert_eq!(r["escalation_level"], 2);
        assert_eq!(
            t.get(&w.am1.token, "/api/v1/service-requests?escalation_level=2")
                .await
                .expect(200)["total"],
            1
        );
        assert_eq!(
            actions(t, &w.am1, &rid).await,
            [
                "create:acknowledged",
                "escalate:acknowledged",
                "escalate:acknowledged"
            ]
        );
        let audit = t
            .get(
                t.admin(),
                &format!("/api/v1/audit?entity=service_request&entity_id={rid}&action=escalate"),
            )
            .await
            .expect(200);
        assert_eq!(audit["total"], 2);
        // The 360 view lists open requests only.
        let v = t
            .get(&w.am1.token, &format!("/api/v1/customers/{}/view", w.c1))
            .await
            .expect(200);
        let open: Vec<&str> = v["open_requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        assert_eq!(open, [rid.as_str()]);

        // The HTTP trigger is for admins.
        t.post(
            &w.lead.token,
            "/api/v1/service-requests/escalations/run",
            json!({}),
        )
        .await
        .expect(403);
        t.post(
            t.admin(),
            "/api/v1/service-requests/escalations/run",
            json!({}),
        )
        .await
        .expect(200);
    })
    .await;
}
