//! Bulk import beyond customers, through the API only: the product catalog upserted by its
//! code and an enterprise's members by their number, in NDJSON, JSON and CSV; a retry changes
//! nothing, a bad record fails alone naming its field, and the single-record API's
//! permissions and scope hold record by record. On both databases.

use serde_json::{json, Value};

use crate::common::world::{id, world};
use crate::common::{on_both, TestApp};

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

fn results(reports: &[Value]) -> Vec<&str> {
    reports
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect()
}

async fn audit_total(t: &TestApp, query: &str) -> i64 {
    t.get(t.admin(), &format!("/api/v1/audit?{query}"))
        .await
        .expect(200)["total"]
        .as_i64()
        .unwrap()
}

const OFFERINGS: &str = "/api/v1/import/offerings";

#[tokio::test]
async fn offerings_import_by_code_and_a_retry_changes_nothing() {
    on_both(async |t| {
        let admin = t.admin();
        let records = [
            json!({"code": "PLAN_A", "name": "Plan A", "offering_type": "plan", "price_cents": 3900,
                   "recurring_period": "month", "channels": ["sms"]}),
            json!({"code": "ADDON_B", "name": "Data 5G", "offering_type": "addon", "price_cents": 1000}),
            // A bad record among good ones fails alone, naming the field the API names.
            json!({"code": "BAD_C", "name": "Bad", "offering_type": "addon", "price_cents": -1}),
            // A bundle names what it bundles by code, earlier in the same upload.
            json!({"code": "BUNDLE_D", "name": "Family", "offering_type": "plan", "price_cents": 8800,
                   "is_bundle": true, "bundled_offering_ids": ["PLAN_A", "ADDON_B"]}),
        ];
        let body = ndjson(&records);
        let (status, r, summary) = t.import(admin, OFFERINGS, "application/x-ndjson", body.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(summary, json!({"records": 4, "created": 3, "updated": 0, "failed": 1}));
        assert_eq!(results(&r), ["created", "created", "failed", "created"], "{r:?}");
        assert_eq!(r[0]["external_id"], "PLAN_A");
        assert_eq!(r[2]["line"], 3);
        assert_eq!(r[2]["field"], "price_cents");
        t.get(admin, "/api/v1/catalog/offerings/BAD_C").await.expect(404);
        let plan = t.get(admin, "/api/v1/catalog/offerings/PLAN_A").await.expect(200);
        assert_eq!(plan["id"], r[0]["id"]);
        assert_eq!(plan["lifecycle_status"], "active");
        let bundle = t.get(admin, "/api/v1/catalog/offerings/BUNDLE_D").await.expect(200);
        assert_eq!(bundle["bundled_offering_ids"], json!([r[0]["id"], r[1]["id"]]));
        // Audited as `POST /catalog/offerings` audits a creation.
        let created = format!("entity=product_offering&action=create&entity_id={}", id(&plan));
        assert_eq!(audit_total(t, &created).await, 1);

        // The same upload again: found by code, nothing written.
        let (_, again, summary) = t.import(admin, OFFERINGS, "application/x-ndjson", body).await;
        assert_eq!(summary, json!({"records": 4, "created": 0, "updated": 3, "failed": 1}));
        assert_eq!(again[0]["id"], r[0]["id"]);
        for code in ["PLAN_A", "ADDON_B", "BUNDLE_D"] {
            let o = t.get(admin, &format!("/api/v1/catalog/offerings/{code}")).await.expect(200);
            assert_eq!(o["version"], 1, "{o}");
        }
        assert_eq!(audit_total(t, "entity=product_offering&action=update").await, 0);
        assert_eq!(
            t.get(admin, "/api/v1/catalog/offerings?limit=1").await.expect(200)["total"],
            3
        );

        // One field given, one field changed; the rest stays. A fixed field is named.
        let change = json!([{"code": "PLAN_A", "price_cents": 4900},
                            {"code": "ADDON_B", "offering_type": "device"}]);
        let (_, r, _) = t.import(admin, OFFERINGS, "application/json", change.to_string()).await;
        assert_eq!(results(&r), ["updated", "failed"], "{r:?}");
        assert_eq!(r[1]["field"], "offering_type");
        let plan = t.get(admin, "/api/v1/catalog/offerings/PLAN_A").await.expect(200);
        assert_eq!(plan["price_cents"], 4900);
        assert_eq!(plan["name"], "Plan A", "fields not given stay");
        assert_eq!(plan["channels"], json!(["sms"]));
        assert_eq!(plan["version"], 2);
        let updated = format!("entity=product_offering&action=update&entity_id={}", id(&plan));
        assert_eq!(audit_total(t, &updated).await, 1);
        let addon = t.get(admin, "/api/v1/catalog/offerings/ADDON_B").await.expect(200);
        assert_eq!(addon["offering_type"], "addon");

        // CSV: an offering per row, lists comma-separated in their cell; a bad cell is named.
        let csv = "code,name,offering_type,price_cents,recurring_period,channels,is_bundle\n\
                   CSV_1,Csv One,addon,500,month,\"sms,app\",false\n\
                   CSV_2,Csv Two,addon,cheap,,,\n\
                   PLAN_A,Plan A,plan,4900,month,sms,\n";
        let (_, r, summary) = t.import(admin, OFFERINGS, "text/csv", csv.to_string()).await;
        assert_eq!(results(&r), ["created", "failed", "updated"], "{r:?}");
        assert_eq!(summary["created"], 1);
        assert_eq!(r[1]["line"], 3);
        assert_eq!(r[1]["field"], "price_cents");
        let one = t.get(admin, "/api/v1/catalog/offerings/CSV_1").await.expect(200);
        assert_eq!(one["channels"], json!(["sms", "app"]));
        assert_eq!(one["recurring_period"], "month");
        let (_, r, _) = t.import(admin, OFFERINGS, "text/csv", csv.to_string()).await;
        assert_eq!(results(&r), ["updated", "failed", "updated"], "{r:?}");
        let one = t.get(admin, "/api/v1/catalog/offerings/CSV_1").await.expect(200);
        assert_eq!(one["version"], 1);
        let plan = t.get(admin, "/api/v1/catalog/offerings/PLAN_A").await.expect(200);
        assert_eq!(plan["version"], 2);

        // Who may create catalog entries may import them; others may not.
        let w = world(t).await;
        let record = ndjson(&[json!({"code": "MK_1", "name": "Mk", "offering_type": "addon", "price_cents": 1})]);
        let (status, r, _) = t.import(&w.marketer.token, OFFERINGS, "application/x-ndjson", record.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(r[0]["result"], "created");
        for token in [&w.am1.token, &w.agent.token, &w.ent_admin.token] {
            let (status, _, e) = t.import(token, OFFERINGS, "application/x-ndjson", record.clone()).await;
            assert_eq!(status, 403, "{e}");
        }
    })
    .await;
}

#[tokio::test]
async fn members_import_by_number_within_the_enterprise() {
    on_both(async |t| {
        let admin = t.admin();
        let w = world(t).await;
        let path = format!("/api/v1/import/customers/{}/members", w.ent);
        let records = [
            json!({"name": "Zhang San", "msisdn": "8613900003001", "department": "Sales"}),
            json!({"name": "Li Si", "msisdn": "8613900003002"}),
            json!({"name": "Bad", "msisdn": "+86139"}),
        ];
        let body = ndjson(&records);
        let (status, r, summary) = t
            .import(admin, &path, "application/x-ndjson", body.clone())
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            summary,
            json!({"records": 3, "created": 2, "updated": 0, "failed": 1})
        );
        assert_eq!(r[0]["external_id"], "8613900003001");
        assert_eq!(r[2]["field"], "msisdn");
        let members = format!("/api/v1/customers/{}/members", w.ent);
        assert_eq!(t.get(admin, &members).await.expect(200)["total"], 2);
        let zhang = r[0]["id"].as_str().unwrap().to_string();
        let created = format!("entity=enterprise_member&action=create&entity_id={zhang}");
        assert_eq!(audit_total(t, &created).await, 1);

        // Again: found by number, nothing written.
        let (_, again, summary) = t.import(admin, &path, "application/x-ndjson", body).await;
        assert_eq!(
            summary,
            json!({"records": 3, "created": 0, "updated": 2, "failed": 1})
        );
        assert_eq!(again[0]["id"], zhang.as_str());
        let m = t
            .get(admin, &format!("{members}/{zhang}"))
            .await
            .expect(200);
        assert_eq!(m["version"], 1);
        assert_eq!(
            audit_total(t, "entity=enterprise_member&action=update").await,
            0
        );

        // CSV: the fields given change, the rest stays.
        let csv = "name,msisdn,title\nZhang San,8613900003001,CFO\n";
        let (_, r, _) = t.import(admin, &path, "text/csv", csv.to_string()).await;
        assert_eq!(results(&r), ["updated"]);
        assert_eq!(r[0]["line"], 2);
        let m = t
            .get(admin, &format!("{members}/{zhang}"))
            .await
            .expect(200);
        assert_eq!(m["title"], "CFO");
        assert_eq!(m["department"], "Sales");
        assert_eq!(m["version"], 2);

        // A removed member imported again comes back as the same record.
        let li = again[1]["id"].as_str().unwrap().to_string();
        t.delete(admin, &format!("{members}/{li}"))
            .await
            .expect(204);
        let one = ndjson(&[json!({"name": "Li Si", "msisdn": "8613900003002"})]);
        let (_, r, _) = t.import(admin, &path, "application/x-ndjson", one).await;
        assert_eq!(r[0]["result"], "created");
        assert_eq!(r[0]["id"], li.as_str());

        // An enterprise admin enrols lines of their own enterprise only: another customer's
        // line is refused alone, naming the field; the enterprise's own line lands.
        t.line(&w.ent, "8613900002001").await;
        let tok = &w.ent_admin.token;
        let mixed = ndjson(&[
            json!({"name": "Wu", "msisdn": "8613900002001"}),
            json!({"name": "Other", "msisdn": "8613900001002"}),
        ]);
        let (status, r, _) = t.import(tok, &path, "application/x-ndjson", mixed).await;
        assert_eq!(status, 200);
        assert_eq!(results(&r), ["created", "failed"], "{r:?}");
        assert_eq!(r[1]["field"], "msisdn");
        let listed = t
            .get(admin, &format!("{members}?msisdn=8613900001002"))
            .await
            .expect(200);
        assert_eq!(listed["total"], 0);
        // Another enterprise is not theirs to see; roles that may not write customers may not
        // import members.
        let theirs = format!("/api/v1/import/customers/{}/members", w.other_ent);
        let one = ndjson(&[json!({"name": "x", "msisdn": "8613900002001"})]);
        let (status, _, _) = t
            .import(tok, &theirs, "application/x-ndjson", one.clone())
            .await;
        assert_eq!(status, 404);
        let (status, _, e) = t
            .import(&w.marketer.token, &path, "application/x-ndjson", one)
            .await;
        assert_eq!(status, 403, "{e}");
    })
    .await;
}
