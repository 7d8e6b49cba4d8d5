//! Propensity learned from answers: per offer and segment (the subscriber's value tier), a
//! Beta posterior of acceptance (accepted against declined or ignored), sampled for each
//! decision (Thompson sampling). A segment with few answers of its own borrows the offer's
//! answers across segments as its prior. A new offer
//! has a wide posterior and gets tried; an offer people take wins more and more often.
//!
//! The sample is drawn with a generator seeded by the decision's own identity (rule,
//! subscriber, trigger), so the same model and the same stream always decide the same. The
//! live model is rebuilt from the stored answers every `[propensity] refresh`; a replay runs
//! on the prior alone, twice alike.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rand::SeedableRng;
use rand_distr::Distribution;

/// Answers per offer code and segment, and per offer code across segments: (accepted,
/// declined or ignored).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    by_segment: HashMap<(String, String), (u64, u64)>,
    by_offer: HashMap<String, (u64, u64)>,
}

/// How many answers of the offer across segments a segment's prior is worth at most: enough
/// to start from what the offer does elsewhere, little enough for the segment's own answers
/// to take over soon.
const PRIOR_WEIGHT: f64 = 10.0;

impl Model {
    /// From (offer code, segment, accepted, not accepted) counts.
    pub fn from_counts(counts: impl IntoIterator<Item = (String, String, u64, u64)>) -> Model {
        let mut m = Model::default();
        for (offer, segment, yes, no) in counts {
            m.add(&offer, &segment, yes, no);
        }
        m
    }

    fn add(&mut self, offer: &str, segment: &str, yes: u64, no: u64) {
        let key = (offer.to_string(), segment.to_string());
        for c in [
            self.by_segment.entry(key).or_default(),
            self.by_offer.entry(offer.to_string()).or_default(),
        ] {
            c.0 += yes;
            c.1 += no;
        }
    }

    /// Counts one answer (what a refresh would pick up; for simulations).
    pub fn record(&mut self, offer_code: &str, segment: &str, accepted: bool) {
        let (yes, no) = if accepted { (1, 0) } else { (0, 1) };
        self.add(offer_code, segment, yes, no);
    }

    /// The segment's answers on a prior from the offer's answers in the other segments
    /// (scaled to at most [`PRIOR_WEIGHT`] answers), itself on a uniform Beta(1, 1).
    pub fn posterior(&self, offer_code: &str, segment: &str) -> (f64, f64) {
        let (all_yes, all_no) = self.by_offer.get(offer_code).copied().unwrap_or_default();
        let (yes, no) = self
            .by_segment
            .get(&(offer_code.to_string(), segment.to_string()))
            .copied()
            .unwrap_or_default();
        let (other_yes, other_no) = ((all_yes - yes) as f64, (all_no - no) as f64);
        let total = other_yes + other_no;
        let scale = if total > 0.0 {
            PRIOR_WEIGHT.min(total) / total
        } else {
            0.0
        };
        (
            1.0 + other_yes * scale + yes as f64,
            1.0 + other_no * scale + no as f64,
        )
    }

    /// The offer's answers across segments: (accepted, declined or ignored).
    pub fn offer_answers(&self, offer_code: &str) -> (u64, u64) {
        self.by_offer.get(offer_code).copied().unwrap_or_default()
    }

    /// The posterior mean: the acceptance rate the answers so far point to.
    pub fn mean(&self, offer_code: &str, segment: &str) -> f64 {
        let (a, b) = self.posterior(offer_code, segment);
        a / (a + b)
    }

    /// One draw from the posterior, the same for the same `seed`.
    pub fn sample(&self, offer_code: &str, segment: &str, seed: u64) -> f64 {
        let (a, b) = self.posterior(offer_code, segment);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        rand_distr::Beta::new(a, b)
            .map(|d| d.sample(&mut rng))
            .unwrap_or_else(|_| a / (a + b))
    }
}

/// The live model, shared by every worker's policy and swapped whole by the refresher.
#[derive(Debug, Clone, Default)]
pub struct Learned(Arc<ArcSwap<Model>>);

impl Learned {
    pub fn current(&self) -> arc_swap::Guard<Arc<Model>> {
        self.0.load()
    }

    pub fn replace(&self, model: Model) {
        self.0.store(Arc::new(model));
    }
}
