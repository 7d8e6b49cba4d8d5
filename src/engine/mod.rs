//! The matcher: one event, one subscriber's state and profile, the rules that listen to the
//! event's type -> candidate offers. Pure and synchronous: the pipeline owns I/O.

mod golden;
mod render;
mod shard;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use rhai::{CallFnOptions, Dynamic, Map, Scope};

use crate::event::{AttrValue, Event, EventType, Known};
use crate::ports::Profile;
use crate::rules::{
    with_deadline, EventView, Facts, LocalTime, OwnedFacts, ProfileView, Rule, RuleSet, SharedFacts,
};
use crate::state::SubscriberState;

// Defined beside the policy that consumes it, so decisioning does not depend on the matcher.
pub use crate::decision::Candidate;

pub use golden::{
    dry_run, run_rule_tests, run_tests_of, test_dir, DryRun, TestOutcome, TEST_MSISDN,
};
pub use render::render;
pub use shard::{Shard, ShardEntry, WARM_GROUP};

/// Settings the matcher needs, resolved once from config.
#[derive(Debug, Clone)]
pub struct MatchSettings {
    pub lateness_secs: i64,
    /// How far behind a subscriber's newest event ids are remembered (at least the lateness):
    /// a resend within it is a duplicate, never run twice and never a dead letter.
    pub dedup_secs: i64,
    pub default_tz: chrono_tz::Tz,
    pub home_country: String,
    pub deadline: Duration,
    /// Failures in a row that quarantine a rule (`engine.quarantine_after`); 0 = never.
    pub quarantine_after: u32,
    /// The share of the engine's time that quarantines a rule averaging at least `slow_run`
    /// (`engine.quarantine_time_share`); 0 = never.
    pub max_time_share: f64,
    pub slow_run: Duration,
    /// The engine time over which the shares are measured ([`TIME_WINDOW`]).
    pub time_window: Duration,
}

/// The engine time over which the rules' shares are measured (summed over workers): long
/// enough that one slow event does not decide, short enough that a slow rule costs at most
/// about this much.
pub const TIME_WINDOW: Duration = Duration::from_secs(1);

impl MatchSettings {
    pub fn from_config(c: &crate::config::EngineConfig) -> Result<Self, String> {
        let lateness_secs = crate::state::parse_duration_secs(&c.lateness)
            .map_err(|e| format!("engine.lateness: {e}"))?;
        let horizon = crate::state::parse_duration_secs(&c.dedup_horizon)
            .map_err(|e| format!("engine.dedup_horizon: {e}"))?;
        Ok(MatchSettings {
            lateness_secs,
            dedup_secs: horizon.max(lateness_secs),
            default_tz: c.default_tz()?,
            home_country: c.home_country.clone(),
            deadline: Duration::from_millis(c.limits.deadline_ms),
            quarantine_after: c.quarantine_after,
            max_time_share: c.quarantine_time_share,
            slow_run: Duration::from_micros(c.quarantine_slow_run_us),
            time_window: TIME_WINDOW,
        })
    }
}

impl Default for MatchSettings {
    fn default() -> Self {
        MatchSettings::from_config(&crate::config::EngineConfig::default())
            .expect("defaults are valid")
    }
}

/// Why an event did not reach the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Seen before (same id): processed once.
    Duplicate,
    /// Older than the allowed lateness behind this subscriber's newest event.
    Late { behind_secs: i64 },
    /// A custom type no rule listens to.
    UnknownType,
}

/// A rule that failed on this event; it is skipped for the event, the engine goes on.
#[derive(Debug, Clone)]
pub struct RuleFailure {
    pub rule_id: String,
    pub message: String,
    /// This failure quarantined the rule (reported once, for the count in the metrics).
    pub quarantined: bool,
}

/// Applies a `profile_change` to the cached profile, so rules see the new value.
pub fn apply_profile_change(profile: &mut Profile, ev: &Event) {
    let (Some(field), Some(new)) = (ev.attr("field").and_then(AttrValue::as_str), ev.attr("new"))
    else {
        return;
    };
    let text = || new.to_string().into();
    match field {
        "value_tier" => profile.value_tier = text(),
        "plan" => profile.plan = text(),
        "segment" => profile.segment = text(),
        "credit_class" => profile.credit_class = text(),
        "language" => profile.language = text(),
        "home_country" => profile.home_country = text(),
        "timezone" => profile.timezone = text(),
        "churn_score" => profile.churn_score = new.as_f64().unwrap_or(profile.churn_score),
        // The CRM deleted (or restored) the number's customer or line.
        "known" => profile.known = new.as_bool().unwrap_or(profile.known),
        "arpu_cents" => {
            profile.arpu_cents = new.as_f64().map(|v| v as i64).unwrap_or(profile.arpu_cents)
        }
        "tenure_months" => {
            profile.tenure_months = new
                .as_f64()
                .map(|v| v as i64)
                .unwrap_or(profile.tenure_months)
        }
        "opt_outs" => {
            if let AttrValue::Json(j) = new {
                if let Some(a) = j.as_array() {
                    profile.opt_outs = a
                        .iter()
                        .filter_map(|v| v.as_str().map(Into::into))
                        .collect();
                }
            } else if let Some(s) = new.as_str() {
                profile.opt_outs = s
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(|x| x.trim().into())
                    .collect();
            }
        }
        other => {
            profile.extra.insert(other.to_string(), new.to_json());
        }
    }
}

/// Runs the rules for one event. State is updated in two phases around the rules: windows
/// include the current event, "last"/"since" describe what came before it.
pub fn evaluate(
    rules: &RuleSet,
    settings: &MatchSettings,
    st: &mut SubscriberState,
    profile: &Arc<Profile>,
    ev: &Arc<Event>,
    out: &mut Vec<Candidate>,
    failures: &mut Vec<RuleFailure>,
) -> Result<(), Skip> {
    if st.seen(&ev.id) {
        return Err(Skip::Duplicate);
    }
    let ty = &ev.kind;
    if matches!(ev.kind, EventType::Custom(_)) && !rules.subscribes(ty) {
        return Err(Skip::UnknownType);
    }
    let now = ev.epoch();
    // Older than the ids still remembered: it may be a duplicate, so it is refused as late.
    if (st.watermark != 0 && now < st.watermark - settings.lateness_secs)
        || st.before_seen_floor(now)
    {
        return Err(Skip::Late {
            behind_secs: st.watermark - now,
        });
    }
    st.forget_ids_before(st.watermark.max(now) - settings.dedup_secs);
    // Local calendar time costs a zone lookup: only worked out when something reads it.
    let needs_local = rules.subscribes(ty)
        || rules
            .spec
            .updates_for(ty)
            .is_some_and(|u| !u.calendars.is_empty());
    let local = if needs_local {
        LocalTime::of(now, &profile.timezone, settings.default_tz)
    } else {
        LocalTime::default()
    };
    st.apply_aggregates(
        &rules.spec,
        ev,
        local.day,
        local.month,
        settings.lateness_secs,
    );

    // The facts scripts see. The state moves into them (no copy) for as long as scripts run,
    // and moves back after the last rule.
    let mut shared: Option<SharedFacts> = None;
    for rule in rules.for_type(ty) {
        // Quarantined: the event goes on without the rule, at the cost of one load.
        if rule.breaker.is_open() {
            continue;
        }
        let m = &rule.meta;
        if m.active_from.is_some_and(|f| ev.ts < f) || m.active_until.is_some_and(|u| ev.ts > u) {
            continue;
        }
        let passes = {
            let facts = match &shared {
                Some(s) => s.0.facts(),
                None => Facts {
                    event: ev,
                    profile,
                    state: st,
                    now,
                    local,
                },
            };
            m.filters.iter().all(|p| p.holds(&facts))
        };
        if !passes {
            continue;
        }
        rule.stats
            .evaluated
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = shared
            .get_or_insert_with(|| {
                SharedFacts(Arc::new(OwnedFacts {
                    event: ev.clone(),
                    profile: profile.clone(),
                    state: std::mem::take(st),
                    now,
                    local,
                }))
            })
            .clone();
        let facts = tag.0.facts();
        let started = std::time::Instant::now();
        let ran = run_rule(rules, settings, rule, ev, profile, tag.clone(), &facts);
        let spent = started.elapsed();
        rule.breaker.took(spent);
        rule.stats.time.observe(spent);
        match ran {
            Ok(found) => {
                rule.breaker.success();
                if let Some(c) = found {
                    rule.stats
                        .matched
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    out.push(c);
                }
            }
            Err(message) => {
                rule.stats
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let tripped = rule
                    .breaker
                    .failure(settings.quarantine_after, &message, &ev.id);
                if let Some(q) = tripped {
                    tracing::error!(rule = %m.id, file = %rule.file.display(), event = %ev.id, failures = q.failures,
                        "rule quarantined: it is skipped on every event until the rules are reloaded; last error: {message}");
                } else {
                    tracing::warn!(rule = %m.id, file = %rule.file.display(), event = %ev.id, "rule skipped for this event: {message}");
                }
                failures.push(RuleFailure {
                    rule_id: m.id.clone(),
                    message,
                    quarantined: tripped.is_some(),
                });
            }
        }
    }
    if let Some(SharedFacts(owned)) = shared {
        // Scripts cannot keep the facts, so this is the last reference; copy only if not.
        *st = match Arc::try_unwrap(owned) {
            Ok(o) => o.state,
            Err(still_shared) => still_shared.state.clone(),
        };
    }
    st.apply_history(&rules.spec, ev);
    if ev.kind == EventType::Known(Known::Complaint) {
        st.last_complaint = st.last_complaint.max(now);
    }
    // Answers reach the state as events, so a replay suppresses exactly as the live run did.
    if ev.kind == EventType::Known(Known::OfferResponse) {
        if let Some(o) = crate::state::Outcome::from_event(ev) {
            st.log_outcome(o);
        }
    }
    Ok(())
}

/// A worker spent `spent` on a run of events with `rules`: when that closes a window of
/// engine time, a rule that took more than its share is quarantined (logged here). The rules
/// quarantined, with the reason.
pub fn account(rules: &RuleSet, settings: &MatchSettings, spent: Duration) -> Vec<RuleFailure> {
    let Some(window) = rules.time.add(spent, settings.time_window) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rule in &rules.rules {
        let tripped = rule
            .breaker
            .end_window(window, settings.max_time_share, settings.slow_run);
        if let Some(q) = tripped {
            tracing::error!(rule = %rule.meta.id, file = %rule.file.display(),
                "rule quarantined: it is skipped on every event until the rules are reloaded; {}", q.reason);
            out.push(RuleFailure {
                rule_id: rule.meta.id.clone(),
                message: q.reason.clone(),
                quarantined: true,
            });
        }
    }
    out
}

fn call(
    rules: &RuleSet,
    settings: &MatchSettings,
    rule: &Rule,
    name: &str,
    ev: &Arc<Event>,
    profile: &Arc<Profile>,
    tag: SharedFacts,
) -> Result<Dynamic, String> {
    let opts = CallFnOptions::new()
        .eval_ast(false)
        .rewind_scope(true)
        .with_tag(tag);
    let args = (EventView(ev.clone()), ProfileView(profile.clone()));
    with_deadline(settings.deadline, || {
        rules
            .engine
            .call_fn_with_options::<Dynamic>(opts, &mut Scope::new(), &rule.ast, name, args)
    })
    .map_err(|e| {
        let line = e
            .position()
            .line()
            .map(|l| format!(" at line {l}"))
            .unwrap_or_default();
        format!("{name}(){line}: {}", crate::rules::explain_error(&e))
    })
}

fn run_rule(
    rules: &RuleSet,
    settings: &MatchSettings,
    rule: &Arc<Rule>,
    ev: &Arc<Event>,
    profile: &Arc<Profile>,
    tag: SharedFacts,
    facts: &Facts<'_>,
) -> Result<Option<Candidate>, String> {
    if rule.has_condition {
        let v = call(rules, settings, rule, "condition", ev, profile, tag.clone())?;
        match v.as_bool() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(t) => return Err(format!("condition() must return true or false, got {t}")),
        }
    }
    let mut vars = Map::new();
    let mut score = rule.meta.priority as f64 / 100.0;
    let mut code = None;
    let mut message = None;
    let mut channels = None;
    if rule.has_offer {
        let v = call(rules, settings, rule, "offer", ev, profile, tag)?;
        if v.is_unit() {
            return Ok(None);
        }
        let m = v.try_cast::<Map>().ok_or(
            "offer() must return a map like #{ score: 0.8, vars: #{ ... } }, or () for no offer",
        )?;
        for (k, v) in m {
            match k.as_str() {
                "score" => {
                    score = v
                        .as_float()
                        .ok()
                        .or_else(|| v.as_int().ok().map(|i| i as f64))
                        .ok_or("offer(): score must be a number")?
                }
                "vars" => vars = v.try_cast::<Map>().ok_or("offer(): vars must be a map")?,
                "code" => code = Some(v.to_string()),
                "message" => message = Some(v.to_string()),
                "channels" => {
                    let list = v
                        .try_cast::<rhai::Array>()
                        .ok_or("offer(): channels must be a list like [\"agent\", \"sms\"]")?;
                    channels = Some(list.into_iter().map(|c| c.to_string()).collect());
                }
                other => {
                    return Err(format!(
                        "offer(): unknown key `{other}` (use score, vars, code, message, channels)"
                    ))
                }
            }
        }
    }
    let lang = profile.language.as_str();
    let code_t = code.unwrap_or_else(|| rule.meta.offer_code.clone());
    let variant = variant_of(&rule.meta, ev.msisdn);
    // The script's own text, else the A/B variant's, else the operator's template for the
    // offer, else the rule's.
    let template = message
        .as_deref()
        .or_else(|| {
            variant
                .and_then(|v| rule.meta.variants.get(v))
                .and_then(|m| in_language(m, lang))
        })
        .or_else(|| rules.templates.text(&code_t, lang))
        .or_else(|| in_language(&rule.meta.message, lang))
        .unwrap_or_default();
    Ok(Some(Candidate {
        rule: rule.clone(),
        offer_code: render(&code_t, &vars, facts),
        message: render(template, &vars, facts),
        score,
        channels,
        variant: variant.map(str::to_string),
    }))
}

/// The A/B variant a subscriber sees of a rule with `variants`: the same one every time,
/// the variants (`base` first, then by name) taking equal shares.
/// The text in `lang`, else English, else any.
fn in_language<'m>(
    texts: &'m std::collections::BTreeMap<String, String>,
    lang: &str,
) -> Option<&'m str> {
    texts
        .get(lang)
        .or_else(|| texts.get("en"))
        .or_else(|| texts.values().next())
        .map(String::as_str)
}

fn variant_of(meta: &crate::rules::RuleMeta, msisdn: crate::event::Msisdn) -> Option<&str> {
    if meta.variants.is_empty() {
        return None;
    }
    let n = meta.variants.len() as u32 + 1;
    let draw = crate::state::draw_bp(&[&meta.id, "|variant|", msisdn.digits().as_str()]);
    match (draw * n / 10_000) as usize {
        0 => Some(crate::rules::BASE_VARIANT),
        i => meta.variants.keys().nth(i - 1).map(String::as_str),
    }
}
