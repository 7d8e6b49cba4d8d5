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
