//! Propensity learned from answers: per offer, a Beta posterior of acceptance (accepted
//! against declined or ignored), sampled for each decision (Thompson sampling). A new offer
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

/// Answers per offer code: (accepted, declined or ignored).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    counts: HashMap<String, (u64, u64)>,
}

impl Model {
    pub fn from_counts(counts: impl IntoIterator<Item = (String, u64, u64)>) -> Model {
        let mut m = Model::default();
        for (offer, yes, no) in counts {
            let c = m.counts.entry(offer).or_default();
            c.0 += yes;
            c.1 += no;
        }
        m
    }

    /// Counts one answer (what a refresh would pick up; for simulations).
    pub fn record(&mut self, offer_code: &str, accepted: bool) {
        let c = self.counts.entry(offer_code.to_string()).or_default();
        if accepted {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }

    /// Beta(1 + accepted, 1 + not accepted): a uniform prior updated by the answers.
    pub fn posterior(&self, offer_code: &str) -> (f64, f64) {
        let (yes, no) = self.counts.get(offer_code).copied().unwrap_or_default();
        (1.0 + yes as f64, 1.0 + no as f64)
    }

    /// The posterior mean: the acceptance rate the answers so far point to.
    pub fn mean(&self, offer_code: &str) -> f64 {
        let (a, b) = self.posterior(offer_code);
        a / (a + b)
    }

    /// One draw from the posterior, the same for the same `seed`.
    pub fn sample(&self, offer_code: &str, seed: u64) -> f64 {
        let (a, b) = self.posterior(offer_code);
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
