//! The marketer's contact policy, `rules/policy.toml`: caps per channel and across channels
//! over calendar days and weeks (in the subscriber's time zone) or rolling windows, quiet
//! hours that defer a message to the window's end, and the share held out as a control group.
//!
//! The file is optional; without it the policy is what `engine.daily_cap` says. Everything
//! here works on event time, so a replay decides exactly as the live stream did.

use std::collections::HashMap;
use std::path::Path;

use chrono::{NaiveTime, TimeZone};
use serde::Deserialize;
use toml::Spanned;

use crate::rules::RuleError;
use crate::state::{
    id_hash, offer_key, parse_duration_secs, parse_share_bp, Contact, Outcome, OutcomeKind,
};

/// Where the policy lives, inside the rules directory.
pub const FILE: &str = "policy.toml";

/// The window a cap counts contacts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// The subscriber's local calendar day.
    Day,
    /// The subscriber's local calendar week, Monday to Sunday.
    Week,
    /// Any window of this many seconds.
    Rolling(i64),
}

#[derive(Debug, Clone)]
pub struct Cap {
    pub name: String,
    /// Channel hashes ([`channel_key`]) the cap counts; empty counts every channel.
    channels: Vec<u32>,
    pub max: u32,
    pub per: Per,
}

impl Cap {
    pub fn new(name: &str, channels: &[String], max: u32, per: Per) -> Cap {
        Cap {
            name: name.to_string(),
            channels: channels.iter().map(|c| channel_key(c)).collect(),
            max,
            per,
        }
    }

    fn counts(&self, channel: u32) -> bool {
        self.channels.is_empty() || self.channels.contains(&channel)
    }
}

/// Local hours in which messages on `channels` wait; `from` > `to` spans midnight.
#[derive(Debug, Clone)]
pub struct Quiet {
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub channels: Vec<String>,
}

/// After `times` answers of a kind to one offer within `within`, the offer is not made
/// again for `hold` (seconds) from the last of them.
#[derive(Debug, Clone)]
pub struct Suppress {
    pub after: OutcomeKind,
    pub times: u32,
    pub within: i64,
    pub hold: i64,
}

/// Weights the arbitration multiplies into an offer's priority (1 where none is set), how
/// many offers each channel takes from one decision, and what a contact costs per channel.
#[derive(Debug, Clone, Default)]
pub struct Arbitration {
    pub offer_value: HashMap<String, f64>,
    pub lever: HashMap<String, f64>,
    pub channel_weight: HashMap<String, f64>,
    /// Winners per channel in one decision; unlisted channels take as many as the decision
    /// does (`engine.max_offers_per_event`).
    pub top_n: HashMap<String, usize>,
    /// What one contact costs on a channel: among channels equally near the subscriber, the
    /// cheaper goes first.
    pub channel_cost: HashMap<String, f64>,
    /// Offers decided for a subscriber within this many seconds of each other compete (0:
    /// only the offers of one event do). A winner on a window channel waits until the window
    /// closes; a better offer before then takes its place.
    pub window_secs: i64,
    /// The channels whose offers wait for the window (not the ones people are looking at).
    pub window_channels: Vec<String>,
}

impl Arbitration {
    pub fn value(&self, offer_code: &str) -> f64 {
        self.offer_value.get(offer_code).copied().unwrap_or(1.0)
    }
    pub fn lever(&self, rule_id: &str) -> f64 {
        self.lever.get(rule_id).copied().unwrap_or(1.0)
    }
    pub fn channel(&self, channel: &str) -> f64 {
        self.channel_weight.get(channel).copied().unwrap_or(1.0)
    }
    pub fn cost(&self, channel: &str) -> Option<f64> {
        self.channel_cost.get(channel).copied()
    }
}

/// The policy file: contact policy and the arbitration's weights.
#[derive(Debug, Clone, Default)]
pub struct ContactPolicy {
    pub arbitration: Arbitration,
    /// `[propensity] learn = true`: how often (seconds) the learned model is rebuilt.
    pub learn_every_secs: Option<i64>,
    pub caps: Vec<Cap>,
    pub suppress: Vec<Suppress>,
    pub quiet: Option<Quiet>,
    /// Share of each rule's audience held out as its control group, in basis points
    /// (1/100 of a percent); a rule's own `control` overrides it.
    pub holdout_bp: u32,
    /// Offers a channel takes per day across all subscribers (`[capacity]`), by channel.
    pub capacity: HashMap<String, u32>,
    /// `[eligibility] hold_when`: profile facts (a field and the values) under which no
    /// marketing offer is made - an account in collections, a line suspended, a blocklist.
    pub hold_when: Vec<(String, Vec<serde_json::Value>)>,
    /// `[cooldown] offers`: after an offer goes out, no rule makes it again for this long
    /// (seconds), by offer code; a rule's own `cooldown` holds that rule's offer besides.
    pub offer_cooldowns: HashMap<String, i64>,
}

impl ContactPolicy {
    /// The first `hold_when` fact the profile has, as `field=value`.
    pub fn held(&self, profile: &crate::ports::Profile) -> Option<String> {
        self.hold_when.iter().find_map(|(field, values)| {
            let v = profile.fact(field)?;
            values.contains(&v).then(|| {
                format!(
                    "{field}={}",
                    v.as_str().map_or(v.to_string(), str::to_string)
                )
            })
        })
    }
}

/// The key contacts are logged under: a 32-bit hash of the channel name. 0 stands for
/// contacts of unknown channel (state stored before channels were logged).
pub fn channel_key(channel: &str) -> u32 {
    (id_hash(channel) as u32).max(1)
}

/// Local day number (days since 0001-01-01, a Monday, as day 1) of `epoch` in `tz`.
fn local_day(tz: chrono_tz::Tz, epoch: i64) -> i64 {
    i64::from(crate::rules::LocalTime::in_zone(epoch, tz).day)
}

impl ContactPolicy {
    /// How far back contacts must be remembered for these caps.
    pub fn horizon_secs(&self) -> i64 {
        self.caps
            .iter()
            .map(|c| match c.per {
                // A local day is at most 26 hours long; a week at most 7 of them.
                Per::Day => 2 * 86_400,
                Per::Week => 8 * 86_400,
                Per::Rolling(s) => s,
            })
            .max()
            .unwrap_or(0)
    }

    /// How far back answers must be remembered for the suppression rules.
    pub fn outcome_horizon_secs(&self) -> i64 {
        self.suppress
            .iter()
            .map(|s| s.within + s.hold)
            .max()
            .unwrap_or(0)
    }

    /// The reason (`after_declined`, ...) the subscriber's answers to `offer_code` hold it
    /// back at `now`, if one does: an answer of the rule's kind less than `hold` ago that,
    /// with the ones before it within `within`, makes `times`.
    pub fn after_outcome(
        &self,
        log: &[Outcome],
        offer_code: &str,
        now: i64,
    ) -> Option<&'static str> {
        if self.suppress.is_empty() {
            return None;
        }
        let key = offer_key(offer_code);
        self.suppress.iter().find_map(|rule| {
            let times: Vec<i64> = log
                .iter()
                .filter(|o| o.offer == key && o.kind == rule.after && o.at() <= now)
                .map(Outcome::at)
                .collect();
            let holds = times.iter().any(|&t| {
                now - t < rule.hold
                    && times
                        .iter()
                        .filter(|&&u| u <= t && t - u < rule.within)
                        .count()
                        >= rule.times as usize
            });
            holds.then_some(match rule.after {
                OutcomeKind::Accepted => "after_accepted",
                OutcomeKind::Declined => "after_declined",
                OutcomeKind::Ignored => "after_ignored",
            })
        })
    }

    /// The first cap a marketing contact on `channel` at `at` would break, given the log.
    /// Rolling windows count contacts on both sides of `at` (an out-of-order event must not
    /// push a later window over its cap); calendar windows count the period `at` falls in.
    pub fn cap_reached(
        &self,
        log: &[Contact],
        channel: &str,
        at: i64,
        tz: chrono_tz::Tz,
    ) -> Option<&Cap> {
        let key = channel_key(channel);
        let day = local_day(tz, at);
        self.caps.iter().filter(|c| c.counts(key)).find(|cap| {
            let used = log
                .iter()
                .filter(|c| c.channel == 0 || cap.counts(c.channel))
                .filter(|c| {
                    let t = c.at();
                    match cap.per {
                        Per::Day => local_day(tz, t) == day,
                        Per::Week => {
                            (local_day(tz, t) - 1).div_euclid(7) == (day - 1).div_euclid(7)
                        }
                        Per::Rolling(span) => (t - at).abs() < span,
                    }
                })
                .count();
            used >= cap.max as usize
        })
    }

    /// When a message on `channel` decided at `at` may go out: `None` now, or the end of
    /// the quiet hours it falls in, in the subscriber's zone.
    pub fn quiet_until(&self, channel: &str, at: i64, tz: chrono_tz::Tz) -> Option<i64> {
        let q = self.quiet.as_ref()?;
        if !q.channels.iter().any(|c| c == channel) {
            return None;
        }
        let local = chrono::DateTime::from_timestamp(at, 0)?
            .with_timezone(&tz)
            .naive_local();
        let t = local.time();
        let quiet = if q.from < q.to {
            t >= q.from && t < q.to
        } else {
            t >= q.from || t < q.to
        };
        if !quiet {
            return None;
        }
        let mut end = local.date().and_time(q.to);
        if end <= local {
            end += chrono::Duration::days(1);
        }
        // The window's end may not exist that day (a spring-forward gap): the first local
        // minute after it that does.
        (0..=180).find_map(|m| {
            tz.from_local_datetime(&(end + chrono::Duration::minutes(m)))
                .earliest()
                .map(|d| d.timestamp())
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    cap: Vec<RawCap>,
    #[serde(default)]
    suppress: Vec<RawSuppress>,
    quiet_hours: Option<RawQuiet>,
    control: Option<RawControl>,
    arbitration: Option<RawArbitration>,
    propensity: Option<RawPropensity>,
    #[serde(default)]
    capacity: HashMap<String, Spanned<u32>>,
    eligibility: Option<RawEligibility>,
    cooldown: Option<RawCooldown>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCooldown {
    #[serde(default)]
    offers: HashMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEligibility {
    #[serde(default)]
    hold_when: std::collections::BTreeMap<String, Spanned<Vec<toml::Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPropensity {
    learn: bool,
    refresh: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArbitration {
    #[serde(default)]
    offer_value: HashMap<String, Spanned<f64>>,
    #[serde(default)]
    lever: HashMap<String, Spanned<f64>>,
    #[serde(default)]
    channel_weight: HashMap<String, Spanned<f64>>,
    #[serde(default)]
    top_n: HashMap<String, Spanned<u32>>,
    #[serde(default)]
    channel_cost: HashMap<String, Spanned<f64>>,
    window: Option<Spanned<String>>,
    window_channels: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    name: Option<String>,
    #[serde(default)]
    channels: Option<Spanned<Vec<String>>>,
    max: u32,
    per: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuppress {
    after: Spanned<String>,
    times: Option<u32>,
    within: Option<Spanned<String>>,
    #[serde(rename = "for")]
    hold: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuiet {
    from: Spanned<String>,
    to: Spanned<String>,
    channels: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    holdout: Spanned<String>,
}

/// Reads `dir/policy.toml`; no file is the default policy. Errors name file, line, column.
pub fn load(dir: &Path, known_channels: &[String]) -> Result<ContactPolicy, RuleError> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&path, &text, known_channels),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ContactPolicy::default()),
        Err(e) => Err(RuleError {
            file: path,
            line: 0,
            column: 0,
            message: format!("cannot read the contact policy: {e}"),
        }),
    }
}

pub fn parse(path: &Path, text: &str, known: &[String]) -> Result<ContactPolicy, RuleError> {
    let at = |offset: usize, message: String| {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        RuleError {
            file: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let start = e.span().map_or(0, |s| s.start);
        at(start, e.message().trim().to_string())
    })?;
    let channels_ok = |list: &Spanned<Vec<String>>| -> Result<(), RuleError> {
        match list.get_ref().iter().find(|c| !known.contains(c)) {
            Some(c) => Err(at(
                list.span().start,
                format!(
                    "unknown channel {c:?}; the channels are: {}",
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    };
    // Tables keyed by channel: each key must be a channel (errors at the value's place).
    let channel_keys_ok = |keys: Vec<(&String, std::ops::Range<usize>)>| match keys
        .into_iter()
        .find(|(c, _)| !known.contains(c))
    {
        Some((c, span)) => Err(at(
            span.start,
            format!(
                "unknown channel {c:?}; the channels are: {}",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    };
    let mut policy = ContactPolicy::default();
    for (i, c) in raw.cap.iter().enumerate() {
        let per = match c.per.get_ref().as_str() {
            "day" => Per::Day,
            "week" => Per::Week,
            other => Per::Rolling(parse_duration_secs(other).map_err(|e| {
                at(
                    c.per.span().start,
                    format!("per: \"day\", \"week\" or a rolling window; {e}"),
                )
            })?),
        };
        let channels = match &c.channels {
            Some(list) => {
                channels_ok(list)?;
                list.get_ref().clone()
            }
            None => Vec::new(),
        };
        let name = c.name.clone().unwrap_or_else(|| format!("cap {}", i + 1));
        policy.caps.push(Cap::new(&name, &channels, c.max, per));
    }
    for r in &raw.suppress {
        let after = OutcomeKind::parse(r.after.get_ref()).ok_or_else(|| {
            at(
                r.after.span().start,
                format!(
                    "after: {:?} is not \"accepted\", \"declined\" or \"ignored\"",
                    r.after.get_ref()
                ),
            )
        })?;
        let span = |s: &Spanned<String>, what: &str| {
            parse_duration_secs(s.get_ref()).map_err(|e| at(s.span().start, format!("{what}: {e}")))
        };
        let hold = span(&r.hold, "for")?;
        let within = match &r.within {
            Some(w) => span(w, "within")?,
            None => hold,
        };
        policy.suppress.push(Suppress {
            after,
            times: r.times.unwrap_or(1).max(1),
            within,
            hold,
        });
    }
    if let Some(q) = raw.quiet_hours {
        let time = |s: &Spanned<String>| {
            let t = s.get_ref();
            NaiveTime::parse_from_str(t, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
                .map_err(|_| {
                    at(
                        s.span().start,
                        format!("{:?} must be a local time like \"21:00\"", s.get_ref()),
                    )
                })
        };
        let (from, to) = (time(&q.from)?, time(&q.to)?);
        if from == to {
            return Err(at(
                q.to.span().start,
                "quiet hours must not start and end at the same time".into(),
            ));
        }
        channels_ok(&q.channels)?;
        policy.quiet = Some(Quiet {
            from,
            to,
            channels: q.channels.into_inner(),
        });
    }
    if let Some(a) = raw.arbitration {
        let weights = |m: HashMap<String, Spanned<f64>>, what: &str| {
            m.into_iter()
                .map(|(k, v)| {
                    let w = *v.get_ref();
                    if w.is_finite() && w >= 0.0 {
                        Ok((k, w))
                    } else {
                        Err(at(
                            v.span().start,
                            format!("{what} {k:?}: a weight must be a number of 0 or more"),
                        ))
                    }
                })
                .collect::<Result<HashMap<_, _>, _>>()
        };
        let spans = a.channel_weight.iter().map(|(c, v)| (c, v.span()));
        let spans = spans.chain(a.channel_cost.iter().map(|(c, v)| (c, v.span())));
        channel_keys_ok(
            spans
                .chain(a.top_n.iter().map(|(c, v)| (c, v.span())))
                .collect(),
        )?;
        let mut top_n = HashMap::new();
        for (c, n) in a.top_n {
            if *n.get_ref() == 0 {
                return Err(at(
                    n.span().start,
                    format!("top_n {c:?}: a channel takes at least 1 offer (remove it from its rules instead)"),
                ));
            }
            top_n.insert(c, *n.get_ref() as usize);
        }
        let window_secs = match &a.window {
            Some(w) => parse_duration_secs(w.get_ref())
                .map_err(|e| at(w.span().start, format!("window: {e}")))?,
            None => 0,
        };
        let window_channels = match a.window_channels {
            Some(list) => {
                channels_ok(&list)?;
                list.into_inner()
            }
            None => vec!["sms".to_string()],
        };
        policy.arbitration = Arbitration {
            offer_value: weights(a.offer_value, "offer_value")?,
            lever: weights(a.lever, "lever")?,
            channel_weight: weights(a.channel_weight, "channel_weight")?,
            top_n,
            channel_cost: weights(a.channel_cost, "channel_cost")?,
            window_secs,
            window_channels,
        };
    }
    channel_keys_ok(raw.capacity.iter().map(|(c, v)| (c, v.span())).collect())?;
    policy.capacity = raw
        .capacity
        .into_iter()
        .map(|(c, n)| (c, *n.get_ref()))
        .collect();
    if let Some(p) = raw.propensity.filter(|p| p.learn) {
        let every = match &p.refresh {
            Some(r) => parse_duration_secs(r.get_ref())
                .map_err(|e| at(r.span().start, format!("refresh: {e}")))?,
            None => 60,
        };
        policy.learn_every_secs = Some(every);
    }
    if let Some(e) = raw.eligibility {
        for (field, values) in e.hold_when {
            let json: Result<Vec<serde_json::Value>, _> = values
                .get_ref()
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(serde_json::Value::from(s.as_str())),
                    toml::Value::Boolean(b) => Ok((*b).into()),
                    toml::Value::Integer(i) => Ok((*i).into()),
                    other => Err(other.type_str()),
                })
                .collect();
            let json = json.map_err(|t| {
                at(
                    values.span().start,
                    format!("hold_when {field:?}: values are text, true/false or whole numbers, not a {t}"),
                )
            })?;
            policy.hold_when.push((field, json));
        }
    }
    if let Some(c) = raw.cooldown {
        for (offer, d) in c.offers {
            let secs = parse_duration_secs(d.get_ref())
                .map_err(|e| at(d.span().start, format!("cooldown for offer {offer:?}: {e}")))?;
            policy.offer_cooldowns.insert(offer, secs);
        }
    }
    if let Some(c) = raw.control {
        policy.holdout_bp =
            parse_share_bp(c.holdout.get_ref()).map_err(|e| at(c.holdout.span().start, e))?;
    }
    Ok(policy)
}
