//! `kairos rules test`: each rule's own test cases, run like golden tests on a fresh engine
//! holding only that rule.

use std::path::Path;
use std::sync::Arc;

use super::{MatchSettings, Shard};
use crate::config::Config;
use crate::decision::Policy;
use crate::event::decode_value;
use crate::ports::{Profile, Status};
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
    let mut out = Vec::new();
    for rule in &set.rules {
        for t in &rule.tests {
            let failure = run_one(rule, t, config).err();
            out.push(TestOutcome {
                rule_id: rule.meta.id.clone(),
                file: rule.file.display().to_string(),
                name: t.name.clone(),
                failure,
            });
        }
    }
    out
}

fn run_one(rule: &Rule, t: &crate::rules::RuleTest, config: &Config) -> Result<(), String> {
    let src = std::fs::read_to_string(&rule.file)
        .map_err(|e| format!("cannot read {}: {e}", rule.file.display()))?;
    let alone = load_sources(
        vec![(rule.file.clone(), src)],
        &config.engine.limits,
        &config.channels.enabled,
    )
    .map_err(|e| e.to_string())?;
    let settings = MatchSettings::from_config(&config.engine)?;
    let mut policy = Policy::from_config(config)?;
    policy.go_status = Status::Proposed;
    // A rule's test is about the rule: its subscriber is decided for with or without a CRM.
    policy.market_unknown = true;
    let mut profile = Profile {
        home_country: config.engine.home_country.clone().into(),
        ..Profile::default()
    };
    if !t.profile.is_null() {
        let mut base = serde_json::to_value(&profile).map_err(|e| e.to_string())?;
        if let (Some(b), Some(p)) = (base.as_object_mut(), t.profile.as_object()) {
            for (k, v) in p {
                if !b.contains_key(k) {
                    return Err(format!("profile has no field `{k}`"));
                }
                b.insert(k.clone(), v.clone());
            }
        }
        profile = serde_json::from_value(base).map_err(|e| format!("profile: {e}"))?;
        profile.known = true;
    }
    let profile = Arc::new(profile);
    let mut shard = Shard::default();
    let mut got = Vec::new();
    let mut failures = Vec::new();
    for (i, raw) in t.events.iter().enumerate() {
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
        let mut recs = Vec::new();
        let _ = shard.process(
            &alone,
            &settings,
            &policy,
            &profile,
            &Arc::new(ev),
            &mut recs,
            &mut failures,
        );
        got.extend(
            recs.into_iter()
                .filter(|r| r.status != Status::Suppressed)
                .map(|r| r.offer_code),
        );
    }
    if let Some(f) = failures.first() {
        return Err(format!("the rule failed: {}", f.message));
    }
    if got != t.expect {
        return Err(format!("expected offers {:?}, got {:?}", t.expect, got));
    }
    Ok(())
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
