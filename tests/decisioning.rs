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
        assert_eq!(model.posterior("GOOD"), (7.0, 4.0));
        assert_eq!(model.posterior("POOR"), (1.0, 5.0));
        assert_eq!(model.posterior("NEW"), (1.0, 1.0), "no answers: the prior");
    })
    .await;
}
