//! Learning from answers on a simulated response stream.

use rand::{Rng, SeedableRng};

use super::propensity::{Learned, Model};
use super::*;
use crate::ports::Profile;

fn policy_learning() -> Policy {
    let mut pol = super::tests::policy_with_cap(1_000_000);
    pol.propensity = Some(Learned::default());
    pol
}

fn offer(code: &str) -> Proposal {
    Proposal {
        offer_code: code.into(),
        cooldown_secs: 0,
        ..super::tests::p(&format!("rule-{code}"), 0.5, &["sms"], Category::Sales)
    }
}

/// Subscriber number `i`'s decision, from empty state, on its event `e{i}` at `at`.
fn decide_for(
    pol: &Policy,
    i: u64,
    offers: Vec<Proposal>,
    at: DateTime<FixedOffset>,
) -> Vec<Recommendation> {
    let msisdn = Msisdn::parse(&format!("86139{i:08}")).unwrap();
    let mut st = SubscriberState::default();
    let trigger = Trigger::Event(format!("e{i}"));
    pol.decide(offers, &mut st, &Profile::default(), msisdn, &trigger, at)
}

#[test]
fn the_posterior_moves_to_the_observed_rate_and_the_better_offer_wins_more_often() {
    let pol = policy_learning();
    let learned = pol.propensity.clone().unwrap();
    // Subscribers take GOOD 30 % of the time and POOR 5 %; the engine does not know it.
    let truth = |code: &str| if code == "GOOD" { 0.30 } else { 0.05 };
    let mut world = rand::rngs::SmallRng::seed_from_u64(42);
    let mut model = Model::default();
    let mut good_wins = Vec::new();
    let at = DateTime::parse_from_rfc3339("2026-11-23T10:00:00+08:00").unwrap();
    for i in 0..4000u64 {
        let recs = decide_for(&pol, i, vec![offer("POOR"), offer("GOOD")], at);
        let winner = recs.iter().find(|r| r.reason.is_none()).unwrap();
        let e = winner.explanation.as_ref().unwrap();
        assert!(e.acceptance.is_some() && e.propensity > 0.0 && e.propensity < 1.0);
        good_wins.push(winner.offer_code == "GOOD");
        let took = world.random_bool(truth(&winner.offer_code));
        model.record(&winner.offer_code, "standard", took);
        // The refresher swaps the model in every 100 answers.
        if i % 100 == 99 {
            learned.replace(model.clone());
        }
    }
    let share = |w: &[bool]| w.iter().filter(|g| **g).count() as f64 / w.len() as f64;
    let (early, late) = (share(&good_wins[..200]), share(&good_wins[3000..]));
    assert!(early < 0.75, "both get tried at first: {early}");
    assert!(late > 0.9, "the better offer wins once learned: {late}");
    assert!(late > early);
    let mean = model.mean("GOOD", "standard");
    assert!((mean - 0.30).abs() < 0.05, "GOOD's posterior mean {mean}");
    // POOR was tried too (exploration), and its estimate points low.
    let poor = model.mean("POOR", "standard");
    assert!(poor < 0.15, "{poor}");
}

#[test]
fn the_same_model_and_stream_decide_the_same() {
    let pol = policy_learning();
    let learned = pol.propensity.clone().unwrap();
    learned.replace(Model::from_counts([
        ("A".to_string(), "standard".to_string(), 3, 7),
        ("B".to_string(), "standard".to_string(), 4, 6),
    ]));
    let at = DateTime::parse_from_rfc3339("2026-11-23T10:00:00+08:00").unwrap();
    let run = || {
        (0..300u64)
            .map(|i| decide_for(&pol, i, vec![offer("A"), offer("B")], at))
            .collect::<Vec<_>>()
    };
    let (one, two) = (run(), run());
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(&two).unwrap()
    );
    // Close estimates: both offers still win sometimes.
    let a = one.iter().filter(|r| r[0].offer_code == "A").count();
    assert!(a > 30 && a < 270, "{a}");
}

#[test]
fn a_segment_learns_its_own_rate_starting_from_the_offers() {
    let mut model = Model::default();
    // Gold subscribers take the offer 60 % of the time, standard ones 10 %.
    for i in 0..1000 {
        model.record("PACK", "gold", i % 10 < 6);
        model.record("PACK", "standard", i % 10 < 1);
    }
    assert!((model.mean("PACK", "gold") - 0.6).abs() < 0.03);
    assert!((model.mean("PACK", "standard") - 0.1).abs() < 0.03);
    // A segment with no answers starts near the offer's overall rate (35 %), not at 50 %.
    let new = model.mean("PACK", "platinum");
    assert!((new - 0.35).abs() < 0.1, "{new}");
    assert_eq!(model.posterior("NEW", "gold"), (1.0, 1.0));
}
