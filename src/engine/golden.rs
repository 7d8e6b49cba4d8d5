//! `kairos rules test`: each rule's own test cases, run like golden tests on a fresh engine
//! holding only that rule.

use std::path::Path;
use std::sync::Arc;

use super::{MatchSettings, Shard};
use crate::config::Config;
use crate::decision::Policy;
use crate::event::decode_value;
use crate::ports::{Profile, Recommendation, Status};
use crate::rules::{load_sources, Rule, RuleSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub rule_id: String,
    pub file: String,
    pub name: String,
    /// `None` when it passed.
    pub failure: Option<String>,
}

pub const TEST_MSISDN: &str = "8613800000001";

/// Runs every test of every rule in `set`. Each test starts from empty state.
pub fn run_rule_tests(set: &RuleSet, config: &Config) -> Vec<TestOutcome> {
    set.rules
        .iter()
        .flat_map(|rule| run_tests_of(rule, config))
        .collect()
}

/// Runs the test cases `rule` carries, each from empty state.
pub fn run_tests_of(rule: &Rule, config: &Config) -> Vec<TestOutcome> {
    rule.tests
        .iter()
        .map(|t| TestOutcome {
            rule_id: rule.meta.id.clone(),
            file: rule.file.display().to_string(),
            name: t.name.clone(),
            failure: run_one(rule, t, config).err(),
        })
        .collect()
}

fn run_one(rule: &Rule, t: &crate::rules::RuleTest, config: &Config) -> Result<(), String> {
    let policy = Policy::from_config(config)?;
    let run = dry_run(rule, policy, &t.profile, &t.events, config)?;
    if let Some(f) = run.failures.first() {
        return Err(format!("the rule failed: {f}"));
    }
    let got: Vec<String> = run
        .decisions
        .into_iter()
        .filter(|r| r.status != Status::Suppressed)
        .map(|r| r.offer_code)
        .collect();
    if got != t.expect {
        return Err(format!("expected offers {:?}, got {:?}", t.expect, got));
    }
    Ok(())
}

/// What one rule decided on a list of events.
#[derive(Debug, Default)]
pub struct DryRun {
    /// Every decision, suppressed ones included (with their reason); none went out.
    pub decisions: Vec<Recommendation>,
    /// The rule's failures on these events, in words.
    pub failures: Vec<String>,
}

/// Runs `rule` alone on `events` from empty state, as its own test cases run: a fresh engine
/// holding only this rule, the decision stages of `policy` with every decision `proposed`
/// (nobody is contacted). An event may leave out `id` and `msisdn` (filled in); `profile`
/// (an object, or null) overrides fields of the default profile.
pub fn dry_run(
    rule: &Rule,
    mut policy: Policy,
    profile: &serde_json::Value,
    events: &[serde_json::Value],
    config: &Config,
) -> Result<DryRun, String> {
    let alone = load_sources(
        vec![(rule.file.clone(), rule.source.to_string())],
        &config.engine.limits,
        &config.channels.enabled,
    )
    .map_err(|e| e.to_string())?;
    let settings = MatchSettings::from_config(&config.engine)?;
    policy.go_status = Status::Proposed;
    // A rule's test is about the rule: its subscriber is decided for with or without a CRM.
    policy.market_unknown = true;
    let mut base = Profile {
        home_country: config.engine.home_country.clone().into(),
        ..Profile::default()
    };
    if !profile.is_null() {
        let mut merged = serde_json::to_value(&base).map_err(|e| e.to_string())?;
        let Some(fields) = profile.as_object() else {
            return Err("profile must be an object of profile fields".into());
        };
        if let Some(b) = merged.as_object_mut() {
            for (k, v) in fields {
                if !b.contains_key(k) {
                    return Err(format!("profile has no field `{k}`"));
                }
                b.insert(k.clone(), v.clone());
            }
        }
        base = serde_json::from_value(merged).map_err(|e| format!("profile: {e}"))?;
        base.known = true;
    }
    let profile = Arc::new(base);
    let mut shard = Shard::default();
    let mut out = DryRun::default();
    let mut failures = Vec::new();
    for (i, raw) in events.iter().enumerate() {
        let mut e = raw.clone();
        let obj = e
            .as_object_mut()
            .ok_or_else(|| format!("event #{} must be a map", i + 1))?;
        obj.entry("id")
            .or_insert_with(|| format!("t-{}", i + 1).into());
        obj.entry("msisdn").or_insert_with(|| TEST_MSISDN.into());
        if !obj.contains_key("ts") {
            return Err(format!(
                "event #{} needs a `ts` like \"2026-11-23T08:15:00+08:00\"",
                i + 1
            ));
        }
        let ev = decode_value(&e).map_err(|err| format!("event #{}: {err}", i + 1))?;
        let _ = shard.process(
            &alone,
            &settings,
            &policy,
            &profile,
            &Arc::new(ev),
            &mut out.decisions,
            &mut failures,
        );
    }
    out.failures = failures.into_iter().map(|f| f.message).collect();
    Ok(out)
}

/// Loads `dir` and runs all rule tests; a summary line per rule file.
pub fn test_dir(dir: &Path, config: &Config) -> Result<Vec<TestOutcome>, crate::rules::RuleErrors> {
    let set = crate::rules::load_all(
        dir,
        &config.channels.templates_dir(),
        crate::rules::templates::Offers::MayBeElsewhere,
        &config.engine.limits,
        &config.channels.enabled,
    )?;
    Ok(run_rule_tests(&set, config))
}
