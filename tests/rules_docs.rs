//! Keeps `docs/rules.md` and the rule pack honest: every built-in function and declaration
//! field is documented, and every rule under `rules/` loads and passes its own tests.

use std::path::PathBuf;

use kairos::config::Config;
use kairos::rules::{FIELDS, HELPERS, STATE_FUNCTIONS};

fn docs() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md"))
        .expect("docs/rules.md is readable")
}

fn rules_config() -> Config {
    let mut config = Config::default();
    config.engine.rules_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    config
}

#[test]
fn every_state_function_is_documented_with_its_arguments() {
    let docs = docs();
    let missing: Vec<String> = STATE_FUNCTIONS
        .iter()
        .map(|(name, args)| format!("`{name}({args})`"))
        .filter(|sig| !docs.contains(sig.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/rules.md does not document {missing:?}"
    );
}

#[test]
fn every_helper_is_documented_with_its_arguments() {
    let docs = docs();
    let missing: Vec<String> = HELPERS
        .iter()
        .map(|(name, args, _)| format!("`{name}({args})`"))
        .filter(|sig| !docs.contains(sig.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/rules.md does not document {missing:?}"
    );
}

#[test]
fn every_declaration_field_is_documented() {
    let docs = docs();
    let missing: Vec<&str> = FIELDS
        .iter()
        .copied()
        .filter(|f| !docs.contains(&format!("| `{f}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/rules.md does not document {missing:?}"
    );
    assert!(docs.contains("profile.opted_out"));
}

#[test]
fn the_rule_pack_loads_and_passes_its_tests() {
    let config = rules_config();
    let set = kairos::rules::load_dir(
        &config.engine.rules_dir,
        &config.engine.limits,
        &config.channels.enabled,
    )
    .unwrap_or_else(|e| panic!("rules/ does not load:\n{e}"));
    assert!(!set.rules.is_empty(), "rules/ holds no rules");
    for rule in &set.rules {
        assert!(
            rule.tests.len() >= 2,
            "{} has {} test case(s); every rule needs at least 2",
            rule.meta.id,
            rule.tests.len()
        );
    }

    let outcomes = kairos::engine::run_rule_tests(&set, &config);
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.failure
                .as_ref()
                .map(|f| format!("{} :: {} ({}): {f}", o.rule_id, o.name, o.file))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "rule tests failed:\n{}",
        failures.join("\n")
    );
}
