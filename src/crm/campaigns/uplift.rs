//! Treated against control: per subscriber, whether they took the offering after they were
//! decided on and what it brought (the catalog price of what they took), then per group the
//! conversion rate and revenue per subscriber, and the uplift of each with its 95 %
//! confidence interval. Campaign and rule results share it.

use std::collections::HashMap;

use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupResult {
    pub subscribers: i64,
    pub converted: i64,
    pub rate: f64,
    /// Catalog price of what the group's subscribers took afterwards, in cents.
    pub revenue_cents: i64,
    /// `revenue_cents` per subscriber of the group.
    pub revenue_per_subscriber: f64,
    /// Sum of squared per-subscriber revenues: for the revenue interval only.
    #[serde(skip)]
    revenue_sq: f64,
}

impl GroupResult {
    pub fn new(subscribers: i64, converted: i64) -> GroupResult {
        GroupResult::with_revenue(subscribers, converted, &[])
    }

    /// `revenues`: one entry (in cents) per subscriber who brought any.
    pub fn with_revenue(subscribers: i64, converted: i64, revenues: &[i64]) -> GroupResult {
        let per = |x: f64| {
            if subscribers > 0 {
                x / subscribers as f64
            } else {
                0.0
            }
        };
        let revenue_cents = revenues.iter().sum();
        GroupResult {
            subscribers,
            converted,
            rate: per(converted as f64),
            revenue_cents,
            revenue_per_subscriber: per(revenue_cents as f64),
            revenue_sq: revenues.iter().map(|&r| (r as f64).powi(2)).sum(),
        }
    }

    /// Sample variance of revenue per subscriber (those who brought none count as 0).
    fn revenue_variance(&self) -> f64 {
        let n = self.subscribers as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mean = self.revenue_per_subscriber;
        ((self.revenue_sq - n * mean * mean) / (n - 1.0)).max(0.0)
    }
}

/// Uplift of `t` over `c` in conversion rate, and its 95 % confidence interval (normal
/// approximation for two proportions).
pub fn uplift(t: &GroupResult, c: &GroupResult) -> Option<(f64, [f64; 2])> {
    if t.subscribers == 0 || c.subscribers == 0 {
        return None;
    }
    let diff = t.rate - c.rate;
    let se = (t.rate * (1.0 - t.rate) / t.subscribers as f64
        + c.rate * (1.0 - c.rate) / c.subscribers as f64)
        .sqrt();
    Some((diff, [diff - 1.96 * se, diff + 1.96 * se]))
}

/// Uplift of `t` over `c` in revenue per subscriber (cents), and its 95 % confidence
/// interval (Welch: the groups' variances may differ).
pub fn revenue_uplift(t: &GroupResult, c: &GroupResult) -> Option<(f64, [f64; 2])> {
    if t.subscribers == 0 || c.subscribers == 0 {
        return None;
    }
    let diff = t.revenue_per_subscriber - c.revenue_per_subscriber;
    let se = (t.revenue_variance() / t.subscribers as f64
        + c.revenue_variance() / c.subscribers as f64)
        .sqrt();
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Some((
        round(diff),
        [round(diff - 1.96 * se), round(diff + 1.96 * se)],
    ))
}

/// Both uplifts of treated over control and their intervals, as results report them:
/// conversion, its interval, revenue per subscriber, its interval (all null without both
/// groups).
pub type Lifts = (Option<f64>, Option<[f64; 2]>, Option<f64>, Option<[f64; 2]>);

/// [`Lifts`] of the treated and control groups, when there are both.
pub fn lifts(groups: Option<(&GroupResult, &GroupResult)>) -> Lifts {
    let lift = groups.and_then(|(t, c)| uplift(t, c));
    let revenue = groups.and_then(|(t, c)| revenue_uplift(t, c));
    (
        lift.map(|(u, _)| u),
        lift.map(|(_, ci)| ci),
        revenue.map(|(u, _)| u),
        revenue.map(|(_, ci)| ci),
    )
}

/// Subscribers of a campaign or rule as their decisions and purchases are read.
#[derive(Default)]
pub struct Tally {
    by: HashMap<String, Subscriber>,
}

struct Subscriber {
    control: bool,
    /// When first decided on (ms): purchases count from then.
    first: i64,
    /// (subscription id, taken at ms, price in cents), each subscription once.
    bought: Vec<(String, i64, i64)>,
}

impl Tally {
    /// One decision row: the subscriber, held out or not, decided at (ms), and a
    /// subscription to the offering they have, if any (id, created at ms, price in cents).
    pub fn add(
        &mut self,
        msisdn: String,
        control: bool,
        decided_ms: i64,
        bought: Option<(String, i64, i64)>,
    ) {
        let s = self.by.entry(msisdn).or_insert(Subscriber {
            control,
            first: i64::MAX,
            bought: Vec::new(),
        });
        s.first = s.first.min(decided_ms);
        if let Some(b) = bought {
            if !s.bought.iter().any(|(id, _, _)| *id == b.0) {
                s.bought.push(b);
            }
        }
    }

    /// Treated and control.
    pub fn groups(&self) -> (GroupResult, GroupResult) {
        let mut out = [(0i64, 0i64, Vec::new()), (0, 0, Vec::new())];
        for s in self.by.values() {
            let g = &mut out[usize::from(s.control)];
            g.0 += 1;
            let revenue: Vec<i64> = s
                .bought
                .iter()
                .filter(|(_, at, _)| *at >= s.first)
                .map(|(_, _, price)| *price)
                .collect();
            if !revenue.is_empty() {
                g.1 += 1;
                g.2.push(revenue.iter().sum());
            }
        }
        let [t, c] = out;
        (
            GroupResult::with_revenue(t.0, t.1, &t.2),
            GroupResult::with_revenue(c.0, c.1, &c.2),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_and_revenue_uplift_with_their_intervals() {
        let mut t = Tally::default();
        // Treated: 4 subscribers, 2 took it (one bought before the decision: not counted).
        t.add("a".into(), false, 100, Some(("s1".into(), 150, 1000)));
        t.add("a".into(), false, 120, Some(("s1".into(), 150, 1000)));
        t.add("b".into(), false, 100, Some(("s2".into(), 200, 3000)));
        t.add("c".into(), false, 100, Some(("s3".into(), 50, 9999)));
        t.add("d".into(), false, 100, None);
        // Control: 2 subscribers, 1 took it.
        t.add("x".into(), true, 100, Some(("s4".into(), 300, 1000)));
        t.add("y".into(), true, 100, None);
        let (tr, co) = t.groups();
        assert_eq!(
            (tr.subscribers, tr.converted, tr.revenue_cents),
            (4, 2, 4000)
        );
        assert_eq!(
            (co.subscribers, co.converted, co.revenue_cents),
            (2, 1, 1000)
        );
        assert_eq!(tr.revenue_per_subscriber, 1000.0);
        let (lift, ci) = uplift(&tr, &co).unwrap();
        assert_eq!(lift, 0.0);
        assert!(ci[0] < 0.0 && ci[1] > 0.0);
        let (rev, ci) = revenue_uplift(&tr, &co).unwrap();
        assert_eq!(rev, 500.0);
        // Treated revenues 1000, 3000, 0, 0: variance 2,000,000; control 1000, 0: 500,000.
        let se = (2_000_000.0f64 / 4.0 + 500_000.0 / 2.0).sqrt();
        assert!((ci[0] - (500.0 - 1.96 * se)).abs() < 0.01, "{ci:?}");
        assert!(revenue_uplift(&tr, &GroupResult::new(0, 0)).is_none());
    }
}
