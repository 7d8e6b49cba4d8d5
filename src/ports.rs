//! The seams between the engine and the rest of the product (CRM, HTTP, channels).
//!
//! The CRM implements [`ProfileSource`]; the engine implements [`EventSink`], [`OfferBook`]
//! and [`RuleCatalog`].
//! Both sides depend only on these traits, so either can be swapped (Redis state, Kafka
//! ingest) without touching the other.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::event::{Event, Msisdn};

/// Value tiers in ascending value: the closed set the CRM accepts and rules rank
/// (`tier_rank()`).
pub const VALUE_TIERS: &[&str] = &["basic", "standard", "silver", "gold", "platinum", "diamond"];

/// Facts the CRM puts in `Profile::extra` for every line it knows (rules read them as
/// `profile.<name>`; `kairos rules check` knows them).
pub const CRM_FACTS: &[&str] = &[
    "customer_type",
    "line_status",
    "loyalty_points",
    "customer_status",
    "account_state",
    "enterprise_id",
    "industry",
    "region_id",
    "owned_offers",
    "service_opt_outs",
    "preferred_channel",
];

/// What the engine knows about a subscriber from the CRM. Defaults where the CRM has no record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// False when the CRM had no record and defaults were used.
    pub known: bool,
    pub customer_id: Option<String>,
    pub value_tier: SmolStr,
    pub arpu_cents: i64,
    pub plan: SmolStr,
    pub home_country: SmolStr,
    pub language: SmolStr,
    pub segment: SmolStr,
    pub tenure_months: i64,
    pub credit_class: SmolStr,
    pub churn_score: f64,
    /// Channels (`sms`, `portal`, ...) or `all` the subscriber opted out of for marketing.
    pub opt_outs: Vec<SmolStr>,
    /// IANA zone for calendar windows and quiet hours.
    pub timezone: SmolStr,
    /// Any other CRM fact, readable by rules as `profile.<name>`.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Profile {
    /// A fact by the name rules read it under (`profile.<name>`), as JSON: the named fields
    /// and anything in `extra`.
    pub fn fact(&self, name: &str) -> Option<serde_json::Value> {
        let text = |s: &SmolStr| Some(serde_json::Value::from(s.as_str()));
        match name {
            "value_tier" => text(&self.value_tier),
            "plan" => text(&self.plan),
            "segment" => text(&self.segment),
            "credit_class" => text(&self.credit_class),
            "language" => text(&self.language),
            "home_country" => text(&self.home_country),
            "customer_id" => self.customer_id.as_deref().map(Into::into),
            _ => self.extra.get(name).cloned(),
        }
    }

    /// Whether the subscriber refused `channel` for messages of this kind: marketing (sales
    /// and care) reads `opt_outs`, mandatory service messages the service refusals
    /// (`service_opt_outs`), so a marketing opt-out never stops a service notice.
    pub fn refuses(&self, channel: &str, service: bool) -> bool {
        let hit = |c: &str| c == channel || c == "all";
        if service {
            self.extra
                .get("service_opt_outs")
                .and_then(|v| v.as_array())
                .is_some_and(|a| a.iter().filter_map(|c| c.as_str()).any(hit))
        } else {
            self.opt_outs.iter().any(|c| hit(c))
        }
    }

    /// Whether the subscriber already has the offering `code` (CRM `owned_offers`).
    pub fn owns(&self, code: &str) -> bool {
        self.extra
            .get("owned_offers")
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some(code)))
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            known: false,
            customer_id: None,
            value_tier: "standard".into(),
            arpu_cents: 0,
            plan: SmolStr::default(),
            home_country: "CN".into(),
            language: "zh".into(),
            segment: "mass".into(),
            tenure_months: 0,
            credit_class: "B".into(),
            churn_score: 0.0,
            opt_outs: Vec::new(),
            timezone: "Asia/Shanghai".into(),
            extra: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("storage: {0}")]
    Storage(String),
    #[error("engine is shutting down")]
    Closed,
    #[error("{0}")]
    Invalid(String),
    /// Not done in time; the caller may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Customer facts for the engine, looked up in batches.
#[async_trait::async_trait]
pub trait ProfileSource: Send + Sync {
    /// One entry per input, in order; `None` where the CRM has no such line.
    async fn load(&self, msisdns: &[Msisdn]) -> Result<Vec<Option<Profile>>, PortError>;
}

/// Where a subscriber's stop word in a reply goes ("TD", "STOP"): the record of consents
/// (the CRM), which also tells the engine, so no marketing reaches the number on that
/// channel again.
#[async_trait::async_trait]
pub trait OptOuts: Send + Sync {
    /// Records that `msisdn` refused marketing on `channel`, saying `said`. False when no
    /// customer has the number (nothing to record it on).
    async fn opt_out(&self, msisdn: Msisdn, channel: &str, said: &str) -> anyhow::Result<bool>;
}

/// Feeds events into the engine (CRM changes, contract reminders, HTTP ingest).
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Returns once the events are durable: processed and committed (backpressure applies).
    async fn submit(&self, events: Vec<Event>) -> Result<(), PortError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Proposed,
    Queued,
    Deferred,
    Sent,
    Delivered,
    Failed,
    Suppressed,
    Accepted,
    Declined,
    Expired,
    /// Handed to a provider that never answered (a timeout after submit): it may or may not
    /// have gone out, so it is never resent blindly.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::Queued => "queued",
            Status::Deferred => "deferred",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Suppressed => "suppressed",
            Status::Accepted => "accepted",
            Status::Declined => "declined",
            Status::Expired => "expired",
            Status::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }
}

/// The recommendation contract (`docs/contract-recommendations.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub id: String,
    #[schema(value_type = String, example = "8613900000001")]
    pub msisdn: Msisdn,
    pub rule_id: String,
    pub offer_code: String,
    pub channel: String,
    pub message: String,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trigger_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub campaign_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
    /// Written in UTC to the millisecond, as every time in the API (`utc_ms`).
    #[serde(with = "utc_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub decided_at: DateTime<FixedOffset>,
    #[serde(with = "utc_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<FixedOffset>,
    /// A `deferred` offer goes out from this time on (the end of the quiet hours it fell in).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        with = "utc_ms::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_before: Option<DateTime<FixedOffset>>,
    pub status: Status,
    pub reason: Option<String>,
    /// Why: the arbitration's factors, and for an offer that lost, the one that won.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub explanation: Option<Explanation>,
    /// A service message (a bill, a contract reminder, a staff notice), not an offer: it
    /// is delivered like one but never counted in offer statistics. Absent means marketing.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub service: bool,
}

/// How the decision stage ranked an offer: `priority = propensity x score x value x lever x
/// channel`, the factors learned from answers (`propensity`), from the rule (`score`) and
/// from `[arbitration]` in `rules/policy.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    pub priority: f64,
    /// A draw from the offer's learned acceptance (`[propensity] learn`), 1 when not learning.
    pub propensity: f64,
    /// The acceptance rate the answers so far point to (when learning).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub acceptance: Option<f64>,
    /// The segment propensity is learned for: the subscriber's value tier.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub segment: Option<String>,
    /// The rule's estimate that the subscriber takes the offer (its `offer()` score).
    pub score: f64,
    /// The offer's value weight (`[arbitration.offer_value]`, by offer code).
    pub value: f64,
    /// The business lever (`[arbitration.lever]`, by rule id).
    pub lever: f64,
    /// The channel's weight (`[arbitration.channel_weight]`).
    pub channel: f64,
    /// For `lost_arbitration`: the id of the offer that won.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub winner: Option<String>,
    /// The A/B variant of the message (`base` or a name from the rule's `variants`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
    /// What a contact on the chosen channel costs (`[arbitration.channel_cost]`), when set.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cost: Option<f64>,
    /// For `profile_hold`: the profile fact that holds offers back (`field=value`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hold: Option<String>,
}

/// A proactive (campaign) or touchpoint offer to push through decisioning and channels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfferRequest {
    pub msisdn: Msisdn,
    /// Set for proactive campaigns.
    pub campaign_id: Option<String>,
    /// Set for touchpoint requests.
    pub request_id: Option<String>,
    /// A rule id or `campaign:<id>`, recorded as the recommendation's `rule_id`.
    pub rule_id: String,
    pub offer_code: String,
    pub message: String,
    pub channels: Vec<String>,
    pub score: f64,
    pub valid_for_secs: i64,
    /// Decision time (event time for the caps); now for live requests.
    pub at: DateTime<FixedOffset>,
    /// Share held out as the campaign's control group (basis points); `None` takes the
    /// contact policy's.
    #[serde(default)]
    pub control_bp: Option<u32>,
    /// A service message (a bill, a contract reminder, a staff notice), not marketing: no
    /// marketing caps, cooldowns, control group or marketing opt-out; the subscriber's
    /// refusals of service messages still apply.
    #[serde(default)]
    pub service: bool,
}

/// The engine's offers, for the 360 view, TMF680, agents and campaigns.
#[async_trait::async_trait]
pub trait OfferBook: Send + Sync {
    /// Recent recommendations for a line, newest first.
    async fn offers_for(
        &self,
        msisdn: Msisdn,
        limit: usize,
    ) -> Result<Vec<Recommendation>, PortError>;
    async fn offer(&self, id: &str) -> Result<Option<Recommendation>, PortError>;
    /// The line's live offers run through the decision stages again now (taken, declined,
    /// opted out or held since drop out), re-ranked, best first; only `channel`'s if given.
    async fn eligible_now(
        &self,
        msisdn: Msisdn,
        channel: Option<&str>,
    ) -> Result<Vec<Recommendation>, PortError>;
    /// Runs requests through the decision stage (caps, opt-outs) and channels.
    async fn propose(&self, reqs: Vec<OfferRequest>) -> Result<Vec<Recommendation>, PortError>;
    /// Real-time usage aggregates the engine keeps for a line (JSON object, may be empty).
    async fn usage(&self, msisdn: Msisdn) -> Result<serde_json::Value, PortError>;
    /// Records a response (accepted / declined / ignored) and closes the loop.
    async fn respond(
        &self,
        id: &str,
        outcome: Status,
        actor: &str,
        reason: Option<String>,
    ) -> Result<Option<Recommendation>, PortError>;
}

/// Where a subscriber can be reached at this moment: an agent has them open on the desk
/// (`agent`), or they have the portal or app open (`portal`). Live only: a replay has none.
pub trait Reachability: Send + Sync {
    fn here(&self, msisdn: Msisdn) -> Option<&'static str>;
}

/// The rules the engine has loaded, for the CRM to check what a campaign attaches.
pub trait RuleCatalog: Send + Sync {
    fn has_rule(&self, rule_id: &str) -> bool;
}

/// Whether a principal may see a subscriber line (data scope). The CRM implements it from
/// customer ownership (`crm::profiles::CrmLineScope`).
#[async_trait::async_trait]
pub trait LineScope: Send + Sync {
    async fn may_see(
        &self,
        who: &crate::access::Principal,
        msisdn: Msisdn,
    ) -> Result<bool, PortError>;
}

/// Times on output are one format: RFC 3339 in UTC to the millisecond
/// (`2026-11-23T00:15:00.000Z`), as the CRM's records are; any RFC 3339 time is read.
/// The instant is the same; the subscriber's own offset is not kept on output.
pub mod utc_ms {
    use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn text(t: &DateTime<FixedOffset>) -> String {
        t.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&text(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        DateTime::<FixedOffset>::deserialize(d)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<FixedOffset>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&text(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
            Option::<DateTime<FixedOffset>>::deserialize(d)
        }
    }
}
