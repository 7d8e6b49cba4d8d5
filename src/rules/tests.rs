use std::path::PathBuf;

use super::*;
use crate::config::ScriptLimits;

fn channels() -> Vec<String> {
    vec!["sms".into(), "portal".into(), "agent".into()]
}

const GOOD: &str = r#"
#{
    id: "sms-bundle",
    name: "SMS bundle",
    kind: "dynamic",
    events: ["sms"],
    when: #{ "count(sms, 24h)": ">= 3" },
    channels: ["sms"],
    offer: #{ code: "SMS-100", validity: "7d" },
    message: "Send lots of SMS? 100 for 5 yuan.",
};

fn condition(event, profile) {
    sum("topup", "amount_cents", "30d") >= 0
}
"#;

fn load(src: &str) -> Result<RuleSet, RuleErrors> {
    load_sources(
        vec![(PathBuf::from("rules/x.rhai"), src.to_string())],
        &ScriptLimits::default(),
        &channels(),
    )
}

fn one_error(src: &str) -> RuleError {
    let errs = load(src).expect_err("should not load");
    assert_eq!(errs.0.len(), 1, "{errs}");
    errs.0[0].clone()
}

#[test]
fn a_good_rule_loads_with_its_state() {
    let set = load(GOOD).unwrap();
    assert_eq!(set.rules.len(), 1);
    assert_eq!(set.for_type(&EventType::parse("sms").unwrap()).count(), 1);
    assert_eq!(set.for_type(&EventType::parse("call").unwrap()).count(), 0);
    // count(sms, 24h) from `when`, sum(topup...) from the condition.
    assert_eq!(set.spec.defs.len(), 2);
    assert!(set.rules[0].has_condition);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let e = one_error("#{ id: \"x\",\n  name: \"y\" \n  kind: \"static\" };");
    assert_eq!(e.file, PathBuf::from("rules/x.rhai"));
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.starts_with("syntax"), "{e}");
    assert!(e.to_string().starts_with("rules/x.rhai:3:"), "{e}");
}

/// The one error of [`GOOD`] with `from` replaced by `to`; it says `what`.
fn refused(from: &str, to: &str, what: &str) -> RuleError {
    let e = one_error(&GOOD.replace(from, to));
    assert!(e.message.contains(what), "{e}");
    e
}

#[test]
fn missing_and_wrong_fields_point_at_the_field() {
    refused("    name: \"SMS bundle\",\n", "", "missing field `name`");
    let e = refused(
        "events: [\"sms\"]",
        "events: [\"smss!\"]",
        "not an event type",
    );
    assert_eq!(e.line, 6);
    let e = refused(
        "channels: [\"sms\"]",
        "channels: [\"fax\"]",
        "unknown channel \"fax\"",
    );
    assert_eq!(e.line, 8);
    refused(
        "    kind: \"dynamic\",",
        "    kind: \"static\",",
        "static rule",
    );
    refused(
        "name: \"SMS bundle\",",
        "name: \"SMS bundle\", colour: \"red\",",
        "unknown field `colour`",
    );
}

#[test]
fn unknown_functions_are_caught_before_running() {
    let e = refused(
        "sum(\"topup\", \"amount_cents\", \"30d\") >= 0",
        "sms_count_today() > 3",
        "unknown function sms_count_today()",
    );
    assert_eq!(e.line, 14);
}

#[test]
fn state_functions_need_literal_arguments() {
    let sum = "sum(\"topup\", \"amount_cents\", \"30d\")";
    refused(
        sum,
        "count(event.type, \"24h\")",
        "write each argument as text in quotes",
    );
    refused(sum, "count(\"sms\", \"a while\")", "not a duration");
}

#[test]
fn duplicate_ids_name_both_files() {
    let errs = load_sources(
        vec![
            (PathBuf::from("a.rhai"), GOOD.into()),
            (PathBuf::from("b.rhai"), GOOD.into()),
        ],
        &ScriptLimits::default(),
        &channels(),
    )
    .unwrap_err();
    assert_eq!(errs.0.len(), 1);
    assert_eq!(errs.0[0].file, PathBuf::from("b.rhai"));
    assert!(
        errs.0[0]
            .message
            .contains("duplicate rule id \"sms-bundle\": also used in a.rhai"),
        "{}",
        errs
    );
}

#[test]
fn hostile_declarations_are_stopped_at_load() {
    let e = one_error("let s = 0; loop { s += 1; }\n#{ id: \"x\" };");
    assert!(
        e.message.contains("operation limit") || e.message.contains("time limit"),
        "{e}"
    );
    let e = one_error("let s = \"x\"; loop { s += s; }\n#{ id: \"x\" };");
    assert!(e.message.contains("size limit"), "{e}");
    let e = one_error("fn f(n) { f(n + 1) }\nf(0);\n#{ id: \"x\" };");
    assert!(e.message.contains("too deeply"), "{e}");
    let e = one_error("eval(\"1\");\n#{ id: \"x\" };");
    assert!(
        e.message.contains("syntax") || e.message.contains("eval"),
        "{e}"
    );
}

#[test]
fn huge_files_are_refused() {
    let big = format!("// {}\n{GOOD}", "x".repeat(300 * 1024));
    let e = one_error(&big);
    assert!(e.message.contains("at most"), "{e}");
}

#[test]
fn functions_with_wrong_parameters_are_refused() {
    let e = one_error(&GOOD.replace("fn condition(event, profile)", "fn condition(event)"));
    assert!(e.message.contains("must take two parameters"), "{e}");
    assert_eq!(e.line, 13);
}

#[test]
fn scripts_share_no_string_cache_between_workers() {
    // Rhai's default interner is one locked cache for all workers; it only churned here.
    let engine = super::sandbox::build_engine(&ScriptLimits::default());
    assert_eq!(engine.max_strings_interned(), 0);
}

/// The marketer's four slips, each found at its place with the right name offered; the same
/// rule with each mended loads.
#[test]
fn checks_know_the_event_contract_and_the_profile() {
    let rule = |events: &str, when: &str, read: &str, tier: &str, msg: &str, extra: &str| {
        format!(
            "#{{\n    id: \"trip\",\n    name: \"Trip\",\n    kind: \"dynamic\",\n    events: [\"{events}\"],\n    \
             when: #{{ {when}: true }},\n    channels: [\"sms\"],\n    offer: #{{ code: \"T\" }},\n    \
             message: \"Hi {msg}\",{extra}\n}};\n\
             fn condition(event, profile) {{ event.{read} == \"FR\" && profile.{tier} == \"gold\" }}\n"
        )
    };
    let ok = (
        "location_update",
        "roaming",
        "country",
        "value_tier",
        "{country_name}",
        "",
    );
    let cases = [
        (
            rule("location_updat", ok.1, ok.2, ok.3, ok.4, ok.5),
            (5, 14),
            "did you mean \"location_update\"",
        ),
        (
            rule(ok.0, "roamin", ok.2, ok.3, ok.4, ok.5),
            (6, 14),
            "did you mean `roaming`",
        ),
        (
            rule(ok.0, ok.1, "countr", ok.3, ok.4, ok.5),
            (11, 38),
            "did you mean `country`",
        ),
        (
            rule(ok.0, ok.1, ok.2, "value_teir", ok.4, ok.5),
            (11, 65),
            "did you mean `profile.value_tier`",
        ),
        (
            rule(ok.0, ok.1, ok.2, ok.3, "{name}", ok.5),
            (9, 18),
            "nothing fills `{name}`",
        ),
    ];
    for (src, (line, column), says) in &cases {
        let e = one_error(src);
        assert_eq!((e.line, e.column), (*line, *column), "{e}\n{src}");
        assert!(e.message.contains(says), "{e}");
    }
    load(&rule(ok.0, ok.1, ok.2, ok.3, ok.4, ok.5)).expect("the mended rule loads");
    // Declared as the rule's own: a custom type (its attributes open) and a fed-in fact.
    let own = rule(
        "promo_ping",
        "campaign",
        "anything",
        "home_region",
        "{whatever}",
        "\n    custom_events: [\"promo_ping\"],\n    profile_facts: [\"home_region\"],",
    );
    load(&own).expect("declared types and facts load");
    // A comment may say anything.
    let commented = GOOD.replace(
        "fn condition",
        "// event.nonsense and profile.nothing\nfn condition",
    );
    load(&commented).expect("comments are not read");
}

/// Rules that load but never fire are told, with file, line and what to write: a `when`
/// value of the wrong kind, a value tier nobody has, an active period over or upside down.
/// A sound rule has no warnings.
#[test]
fn a_rule_that_can_never_fire_loads_with_a_warning() {
    let rule = |when: &str, active: &str| {
        format!(
            "#{{\n    id: \"trip\",\n    name: \"Trip\",\n    kind: \"dynamic\",\n    events: [\"location_update\"],\n    \
             when: #{{ {when} }},\n    channels: [\"sms\"],\n    offer: #{{ code: \"T\" }},\n    \
             message: \"Hi\",{active}\n}};\n"
        )
    };
    let warnings = |src: &str| -> Vec<RuleError> {
        let set = load(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        set.rules[0].warnings.clone()
    };
    assert!(warnings(&rule("roaming: true, country: \"JP\"", "")).is_empty());
    assert!(warnings(&rule(
        "\"profile.value_tier\": [\"gold\", \"platinum\"]",
        ""
    ))
    .is_empty());
    assert!(warnings(&rule(
        "roaming: true",
        "\n    active: #{ from: \"2026-01-01\", to: \"2999-12-31\" }"
    ))
    .is_empty());
    let cases = [
        (rule("roaming: \"yes\"", ""), (6, 14), "`roaming` is true or false"),
        (rule("country: 81", ""), (6, 14), "`country` is text"),
        (rule("country: \">= 3\"", ""), (6, 14), "never holds"),
        (
            rule("\"profile.value_tier\": \"platinium\"", ""),
            (6, 36),
            "no customer has value tier \"platinium\" (tiers are basic, standard, silver, gold, platinum, diamond), so this never matches; did you mean \"platinum\"?",
        ),
        (rule("\"profile.value_tier\": [\"Gold\", \"silver\"]", ""), (6, 37), "did you mean \"gold\"?"),
        (
            rule("roaming: true", "\n    active: #{ \"until\": \"2020-06-30\" }"),
            (10, 5),
            "the rule's active period ended on 2020-06-30",
        ),
        (
            rule("roaming: true", "\n    active: #{ from: \"2999-02-01\", to: \"2999-01-31\" }"),
            (10, 5),
            "starts (2999-02-01",
        ),
    ];
    for (src, (line, column), says) in &cases {
        let w = warnings(src);
        assert_eq!(w.len(), 1, "{w:?}\n{src}");
        assert_eq!(
            (w[0].line, w[0].column),
            (*line, *column),
            "{}\n{src}",
            w[0]
        );
        assert!(w[0].message.contains(says), "{}", w[0]);
        assert!(
            w[0].to_string()
                .starts_with(&format!("rules/x.rhai:{line}:")),
            "{}",
            w[0]
        );
    }
}
