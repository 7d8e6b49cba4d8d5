//! The learned propensity model against both databases: answers stored by the outbox's
//! store become the model every instance learns.

use crate::common;

use common::on_both_urls;
use kairos::decision::propensity::Learned;
use kairos::pipeline::{learn, RecStore};
use kairos::ports::Status;
use kairos::store::Db;

#[tokio::test]
async fn stored_answers_become_the_learned_model() {
    on_both_urls(async |_, url| {
        let store = RecStore::new(Db::connect(&url, 4).await.expect("database"));
        let mut recs = Vec::new();
        for i in 0..10 {
            let mut r = common::sms_rec(&format!("g{i}"), &format!("86139000050{i:02}"));
            r.offer_code = "GOOD".into();
            recs.push(r);
        }
        for i in 0..4 {
            let mut r = common::sms_rec(&format!("p{i}"), &format!("86139000060{i:02}"));
            r.offer_code = "POOR".into();
            recs.push(r);
        }
        // One decided for a gold subscriber while learning: its segment is stored with it.
        let mut gold = common::sms_rec("gold-1", "8613900007001");
        gold.offer_code = "GOOD".into();
        gold.explanation = Some(kairos::ports::Explanation {
            priority: 0.5,
            propensity: 0.5,
            acceptance: Some(0.5),
            segment: Some("gold".into()),
            score: 0.5,
            value: 1.0,
            lever: 1.0,
            channel: 1.0,
            winner: None,
            variant: None,
            cost: None,
            hold: None,
        });
        store.insert(std::slice::from_ref(&gold)).await.unwrap();
        store
            .answer(&gold, Status::Accepted, "test", None)
            .await
            .unwrap();
        store.insert(&recs).await.unwrap();
        // GOOD: 6 accepted, 2 declined, 1 ignored, 1 unanswered; POOR: 4 declined, the last
        // one first accepted then declined (the latest answer counts).
        for (i, r) in recs.iter().enumerate() {
            let outcome = match (r.offer_code.as_str(), i) {
                ("GOOD", 0..=5) => Status::Accepted,
                ("GOOD", 6..=7) => Status::Declined,
                ("GOOD", 8) => Status::Expired,
                ("GOOD", _) => continue,
                _ => Status::Declined,
            };
            if r.id == "p3" {
                store
                    .answer(r, Status::Accepted, "test", None)
                    .await
                    .unwrap();
            }
            store.answer(r, outcome, "test", None).await.unwrap();
        }
        let learned = Learned::default();
        learn::refresh(&store, &learned).await.unwrap();
        let model = learned.current();
        // Decided without a segment: `standard` (6 yes, 3 no), on the prior of the other
        // segments' answers (gold: 1 yes), and the other way round.
        assert_eq!(model.posterior("GOOD", "standard"), (8.0, 4.0));
        assert_eq!(model.posterior("GOOD", "gold"), (8.0, 4.0));
        assert_eq!(model.posterior("POOR", "standard"), (1.0, 5.0));
        assert_eq!(
            model.posterior("NEW", "standard"),
            (1.0, 1.0),
            "no answers: the prior"
        );
        // A segment with no answers of its own starts from all of the offer's (10 answers).
        let (a, b) = model.posterior("GOOD", "platinum");
        assert!(
            (a - 8.0).abs() < 1e-9 && (b - 4.0).abs() < 1e-9,
            "({a}, {b})"
        );
    })
    .await;
}

/// The eligibility stage and the touchpoints through the real engine and the CRM: a line's
/// live offer is ranked at the agent's next-best offers and in TMF680 until the customer opts
/// out of its channel (asked again now, it drops out of both), and a product the line owns
/// is not offered again (`already_owned`, told to the engine when the subscription is made).
#[tokio::test]
async fn touchpoints_rank_what_passes_the_stages_now_and_owned_products_are_not_offered() {
    use serde_json::json;
    crate::real_engine::on_both_engine(async |t| {
        let rules = &t.app.state.config.engine.rules_dir;
        std::fs::write(
            rules.join("portal-roam.rhai"),
            r#"#{ id: "portal-roam", name: "Roaming pop-up", kind: "dynamic",
                events: ["location_update"], when: #{ roaming: true }, channels: ["portal"],
                offer: #{ code: "POP-{country}", validity: "1d" }, message: "Travelling to {country}?" };"#,
        )
        .unwrap();
        t.post(t.admin(), "/api/v1/rules/reload", json!({}))
            .await
            .expect(200);
        let c = t.customer("Roamer", json!({})).await;
        let cid = c["id"].as_str().unwrap().to_string();
        let m = "8613900008801";
        let line = t.line(&cid, m).await;
        let roam = async |id: &str, country: &str| {
            let ev = json!({"id": id, "type": "location_update", "msisdn": m,
                "ts": chrono::Utc::now().to_rfc3339(), "attrs": {"country": country, "roaming": true}});
            let r = t.post(t.admin(), "/api/v1/events?wait=true", ev).await;
            r.body["outcome"]["decisions"][0].clone()
        };
        let th = roam("tp-1", "TH").await;
        assert_eq!(th["offer_code"], "POP-TH", "{th}");
        assert_eq!(th["reason"], serde_json::Value::Null, "{th}");
        let nbo = |path: String| async move { t.get(t.admin(), &path).await.expect(200) };
        let offers = nbo(format!("/api/v1/subscribers/{m}/next-best-offers")).await;
        assert_eq!(offers["items"][0]["id"], th["id"], "{offers}");
        let tmf = "/tmf-api/recommendationManagement/v4/queryProductRecommendation";
        let query = json!({"relatedParty": [{"id": m, "role": "customer"}],
            "@type": "QueryProductRecommendation"});
        let q = t.post(t.admin(), tmf, query.clone()).await.expect(201);
        assert_eq!(q["recommendationItem"][0]["id"], th["id"], "{q}");

        // The customer opts out of portal marketing: asked now, the offer no longer passes.
        t.post(
            t.admin(),
            &format!("/api/v1/customers/{cid}/consents"),
            json!({"channel": "portal", "purpose": "marketing", "granted": false}),
        )
        .await
        .expect(201);
        let offers = nbo(format!("/api/v1/subscribers/{m}/next-best-offers")).await;
        assert_eq!(offers["items"], json!([]), "opted out since the decision");
        let q = t.post(t.admin(), tmf, query).await.expect(201);
        assert_eq!(q["recommendationItem"], json!([]), "{q}");

        // The line takes POP-FR; a trip to France does not offer it again (eligibility comes
        // first: the product owned is the reason, before the opt-out).
        let offering = t
            .post(
                t.admin(),
                "/api/v1/catalog/offerings",
                json!({"code": "POP-FR", "name": "France pass", "offering_type": "addon", "price_cents": 900}),
            )
            .await
            .expect(201);
        t.post(
            t.admin(),
            "/api/v1/subscriptions",
            json!({"customer_id": cid, "line_id": line["id"], "offering_id": offering["id"], "status": "active"}),
        )
        .await
        .expect(201);
        let fr = roam("tp-2", "FR").await;
        assert_eq!(
            (fr["status"].as_str(), fr["reason"].as_str()),
            (Some("suppressed"), Some("already_owned")),
            "{fr}"
        );
        let it = roam("tp-3", "IT").await;
        assert_eq!(it["reason"], "opt_out", "{it}");
    })
    .await;
}
