//! A touchpoint's ranking: the subscriber's live offers, run through the decision stages
//! again at the moment someone asks (an agent opens the customer, the portal or a TMF680
//! query), so what has changed since the decision - an answer, a purchase, an opt-out, a
//! hold - counts, and the order uses the weights and the learned acceptance of now.

use chrono::{DateTime, Utc};

use crate::decision::Policy;
use crate::ports::{Profile, Recommendation, Status};
use crate::rules::{Category, RuleSet};
use crate::state::SubscriberState;

/// Offers a subscriber can still take: not expired, not suppressed, not answered; best first.
pub fn live(
    recs: Vec<Recommendation>,
    channel: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<Recommendation> {
    let mut v: Vec<Recommendation> = recs
        .into_iter()
        .filter(|r| {
            matches!(
                r.status,
                Status::Proposed
                    | Status::Queued
                    | Status::Deferred
                    | Status::Sent
                    | Status::Delivered
            )
        })
        .filter(|r| r.expires_at > now)
        .filter(|r| channel.is_none_or(|c| r.channel == c))
        .collect();
    sort(&mut v);
    v
}

/// As the decision stage ranks them: priority (with the policy's weights), else score;
/// the newer first among equals.
pub fn sort(v: &mut [Recommendation]) {
    let rank = |r: &Recommendation| r.explanation.as_ref().map_or(r.score, |e| e.priority);
    v.sort_by(|a, b| {
        rank(b)
            .partial_cmp(&rank(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.decided_at.cmp(&a.decided_at))
    });
}

/// The live offers that pass the stages now, re-ranked. A rule no longer loaded counts as
/// a sales offer; campaign and touchpoint offers are sales offers.
pub fn recheck(
    policy: &Policy,
    rules: &RuleSet,
    live: Vec<Recommendation>,
    st: &SubscriberState,
    profile: &Profile,
) -> Vec<Recommendation> {
    let category = |rule_id: &str| {
        rules
            .rules
            .iter()
            .find(|r| r.meta.id == rule_id)
            .map_or(Category::Sales, |r| r.meta.category)
    };
    let now = Utc::now().timestamp();
    let mut v: Vec<Recommendation> = live
        .into_iter()
        .filter_map(|r| {
            let c = category(&r.rule_id);
            policy.still_eligible(r, c, st, profile, now)
        })
        .collect();
    sort(&mut v);
    v
}
