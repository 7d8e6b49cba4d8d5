use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::config::ScriptLimits;
use crate::decision::Policy;
use crate::event::decode;
use crate::ports::Status;
use crate::rules::load_sources;

fn set(rules: &[(&str, &str)]) -> RuleSet {
    let channels = vec!["sms".to_string(), "portal".to_string(), "agent".to_string()];
    let limits = ScriptLimits {
        deadline_ms: 200,
        ..ScriptLimits::default()
    };
    load_sources(
        rules
            .iter()
            .map(|(n, s)| (PathBuf::from(n), s.to_string()))
            .collect(),
        &limits,
        &channels,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn rule(id: &str, body: &str) -> String {
    format!(
        r#"#{{ id: "{id}", name: "{id}", kind: "dynamic", events: ["sms"], channels: ["sms"],
        offer: #{{ code: "{id}-OFFER" }}, message: "hi {{peer}}" }};
        {body}"#
    )
}

fn sms(id: &str) -> Arc<Event> {
    Arc::new(decode(format!(r#"{{"id":"{id}","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{{"peer":"8613900000002"}}}}"#).as_bytes()).unwrap())
}

fn run(set: &RuleSet, ev: &Arc<Event>) -> (Vec<Recommendation>, Vec<RuleFailure>) {
    let mut cfg = crate::config::Config::default();
    cfg.engine.max_offers_per_event = 10;
    let policy = proposing(&cfg);
    process(
        &mut Shard::default(),
        set,
        &MatchSettings::default(),
        &policy,
        ev,
    )
    .unwrap()
}

/// The policy of `cfg`, which markets to subscribers the CRM does not know too.
fn to_anyone(cfg: &crate::config::Config) -> Policy {
    let mut policy = Policy::from_config(cfg).unwrap();
    policy.market_unknown = true;
    policy
}

/// Like [`to_anyone`], and what it decides is proposed (no channel is waited for).
fn proposing(cfg: &crate::config::Config) -> Policy {
    let mut policy = to_anyone(cfg);
    policy.go_status = Status::Proposed;
    policy
}

/// One event through a shard's whole decision, with a profile the CRM does not know: the
/// offers and the rules' failures.
fn process(
    shard: &mut Shard,
    set: &RuleSet,
    settings: &MatchSettings,
    policy: &Policy,
    ev: &Arc<Event>,
) -> Result<(Vec<Recommendation>, Vec<RuleFailure>), Skip> {
    let profile = Arc::new(Profile::default());
    let (mut recs, mut fails) = (Vec::new(), Vec::new());
    shard.process(set, settings, policy, &profile, ev, &mut recs, &mut fails)?;
    Ok((recs, fails))
}

/// One event through the rules alone ([`evaluate`]): the candidates and the failures.
fn eval(
    set: &RuleSet,
    settings: &MatchSettings,
    st: &mut crate::state::SubscriberState,
    ev: &Arc<Event>,
) -> Result<(Vec<Candidate>, Vec<RuleFailure>), Skip> {
    let profile = Arc::new(Profile::default());
    let (mut out, mut fails) = (Vec::new(), Vec::new());
    evaluate(set, settings, st, &profile, ev, &mut out, &mut fails)?;
    Ok((out, fails))
}

use crate::ports::{Profile, Recommendation};

#[test]
fn hostile_rules_are_stopped_and_the_others_still_run() {
    let s = set(&[
        ("loop.rhai", &rule("endless-loop", "fn condition(event, profile) { loop { } }")),
        ("recurse.rhai", &rule("deep-recursion", "fn f(n) { f(n + 1) } fn condition(event, profile) { f(0) }")),
        ("string.rhai", &rule("huge-string", "fn condition(event, profile) { let s = \"0123456789\"; while true { s += s; } true }")),
        ("alloc.rhai", &rule("hundred-mb", "fn condition(event, profile) { let s = \"x\".pad(100000000, \"x\"); true }")),
        ("throws.rhai", &rule("throws", "fn condition(event, profile) { throw \"boom\" }")),
        ("ok.rhai", &rule("fine", "fn condition(event, profile) { event.peer == \"8613900000002\" }")),
    ]);
    let started = std::time::Instant::now();
    let (recs, fails) = run(&s, &sms("e1"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "limits must stop scripts quickly"
    );
    let failed: std::collections::BTreeSet<&str> =
        fails.iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(
        failed,
        [
            "deep-recursion",
            "endless-loop",
            "huge-string",
            "hundred-mb",
            "throws"
        ]
        .into_iter()
        .collect()
    );
    for f in &fails {
        let r = s.get(&f.rule_id).unwrap();
        assert_eq!(r.stats.snapshot().2, 1, "{} error counted", f.rule_id);
    }
    let msg = |id: &str| {
        fails
            .iter()
            .find(|f| f.rule_id == id)
            .unwrap()
            .message
            .clone()
    };
    assert!(
        msg("endless-loop").contains("operation limit")
            || msg("endless-loop").contains("time limit"),
        "{}",
        msg("endless-loop")
    );
    for (id, says) in [
        ("deep-recursion", "too deeply"),
        ("huge-string", "size limit"),
        ("hundred-mb", "size limit"),
    ] {
        assert!(msg(id).contains(says), "{}", msg(id));
    }
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].rule_id, "fine");
    assert_eq!(recs[0].message, "hi 8613900000002");
}

#[test]
fn wall_clock_deadline_stops_slow_scripts() {
    // Many operations allowed, but a short deadline.
    let channels = vec!["sms".to_string()];
    let limits = ScriptLimits {
        max_operations: u64::MAX / 2,
        deadline_ms: 20,
        ..ScriptLimits::default()
    };
    let s = load_sources(
        vec![(
            PathBuf::from("slow.rhai"),
            rule(
                "slow",
                "fn condition(event, profile) { let x = 0; loop { x += 1; } }",
            ),
        )],
        &limits,
        &channels,
    )
    .unwrap();
    let settings = MatchSettings {
        deadline: std::time::Duration::from_millis(20),
        ..MatchSettings::default()
    };
    let mut st = crate::state::SubscriberState::default();
    let t = std::time::Instant::now();
    let (_, fails) = eval(&s, &settings, &mut st, &sms("e1")).unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    assert!(
        fails[0].message.contains("time limit"),
        "{}",
        fails[0].message
    );
}

#[test]
fn rules_only_see_events_they_subscribe_to() {
    let s = set(&[("a.rhai", &rule("sms-only", ""))]);
    let call = Arc::new(decode(br#"{"id":"c1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00"}"#).unwrap());
    let (recs, _) = run(&s, &call);
    assert!(recs.is_empty());
    assert_eq!(s.rules[0].stats.snapshot().0, 0, "never evaluated");
}

#[test]
fn duplicates_late_and_unknown_types_are_skipped() {
    let s = set(&[("a.rhai", &rule("r", ""))]);
    let settings = MatchSettings::default();
    let mut st = crate::state::SubscriberState::default();
    let mut skip = |ev: &Arc<Event>| eval(&s, &settings, &mut st, ev).err();
    assert_eq!(skip(&sms("e1")), None);
    assert_eq!(skip(&sms("e1")), Some(Skip::Duplicate));
    let late = Arc::new(decode(br#"{"id":"old","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T05:00:00+08:00"}"#).unwrap());
    assert_eq!(
        skip(&late),
        Some(Skip::Late {
            behind_secs: 3 * 3600
        })
    );
    let custom = Arc::new(decode(br#"{"id":"x","type":"app_install","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00"}"#).unwrap());
    assert_eq!(skip(&custom), Some(Skip::UnknownType));
}

#[test]
fn profile_change_updates_the_profile_rules_see() {
    let mut p = Profile::default();
    let ev = decode(br#"{"id":"p1","type":"profile_change","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{"field":"value_tier","old":"silver","new":"gold"}}"#).unwrap();
    apply_profile_change(&mut p, &ev);
    assert_eq!(p.value_tier, "gold");
    let ev = decode(br#"{"id":"p2","type":"profile_change","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{"field":"churn_score","old":0.1,"new":0.8}}"#).unwrap();
    apply_profile_change(&mut p, &ev);
    assert_eq!(p.churn_score, 0.8);
    let ev = decode(br#"{"id":"p3","type":"profile_change","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{"field":"opt_outs","old":[],"new":["sms"]}}"#).unwrap();
    apply_profile_change(&mut p, &ev);
    assert_eq!(p.opt_outs, vec![smol_str::SmolStr::new("sms")]);
    // A deleted customer or line: the number is the CRM's no more.
    p.known = true;
    let ev = decode(br#"{"id":"p4","type":"profile_change","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{"field":"known","old":true,"new":false}}"#).unwrap();
    apply_profile_change(&mut p, &ev);
    assert!(!p.known);
}

#[test]
fn offer_may_choose_code_message_score_and_channels() {
    let s = set(&[(
        "a.rhai",
        &rule(
            "chooser",
            r#"fn offer(event, profile) { #{ code: "PICKED", message: "for {who}", score: 0.42, channels: ["agent"], vars: #{ who: "you" } } }"#,
        ),
    )]);
    let (recs, fails) = run(&s, &sms("e1"));
    assert!(fails.is_empty(), "{fails:?}");
    assert_eq!(recs[0].offer_code, "PICKED");
    assert_eq!(recs[0].message, "for you");
    assert_eq!(recs[0].channel, "agent");
    assert_eq!(recs[0].score, 0.42);
}

#[test]
fn changed_compares_with_the_previous_event() {
    let src = r#"#{ id: "moved", name: "moved", kind: "dynamic", events: ["location_update"], channels: ["sms"],
        when: #{ "changed(location_update, region)": true }, offer: #{ code: "MOVED-{region}" }, message: "x" };"#;
    let s = set(&[("m.rhai", src)]);
    let mut shard = Shard::default();
    let mut cfg = crate::config::Config::default();
    cfg.engine.daily_cap = 100;
    let policy = to_anyone(&cfg);
    let mut codes = Vec::new();
    for (i, region) in ["GD", "GD", "SC", "SC", "GD"].iter().enumerate() {
        let ev = Arc::new(decode(format!(r#"{{"id":"l{i}","type":"location_update","msisdn":"8613900000001","ts":"2026-11-23T0{i}:00:00+08:00","attrs":{{"region":"{region}"}}}}"#).as_bytes()).unwrap());
        let (recs, _) = process(&mut shard, &s, &MatchSettings::default(), &policy, &ev).unwrap();
        codes.extend(recs.into_iter().map(|r| r.offer_code));
    }
    assert_eq!(codes, vec!["MOVED-SC", "MOVED-GD"]);
}

/// Grows a list on every run until a limit stops it (the list's size, the operation bound or
/// the deadline, whichever comes first): the rule that stalled a replay.
const GROW_ARRAY: &str = "fn condition(event, profile) { let seen = []; loop { seen.push(event.peer); let copy = seen; } }";

#[test]
fn a_rule_failing_run_after_run_is_quarantined_and_the_others_still_fire() {
    let s = set(&[
        ("grow.rhai", &rule("grow-array", GROW_ARRAY)),
        (
            "ok.rhai",
            &rule("fine", "fn condition(event, profile) { true }"),
        ),
    ]);
    let after = MatchSettings::default().quarantine_after;
    assert_eq!(after, 5, "the documented default");
    let grow = s.get("grow-array").unwrap();
    for i in 1..=after + 3 {
        let (recs, fails) = run(&s, &sms(&format!("e{i}")));
        assert_eq!(recs.len(), 1, "event {i}: the good rule fires");
        assert_eq!(recs[0].rule_id, "fine");
        if i <= after {
            assert_eq!(fails.len(), 1, "event {i}: {fails:?}");
            assert!(fails[0].message.contains("limit"), "{}", fails[0].message);
            assert_eq!(fails[0].quarantined, i == after, "trips on failure {after}");
            assert_eq!(grow.breaker.is_open(), i == after);
        } else {
            assert!(
                fails.is_empty(),
                "event {i}: quarantined, not run: {fails:?}"
            );
        }
    }
    let (evaluated, _, errors) = grow.stats.snapshot();
    assert_eq!((evaluated, errors), (after as u64, after as u64));
    assert_eq!(s.get("fine").unwrap().stats.snapshot().0, after as u64 + 3);
    let q = grow.breaker.quarantine().expect("why and since when");
    assert_eq!(q.event_id, format!("e{after}"));
    assert_eq!(q.failures, after);
    assert!(q.reason.starts_with("condition()"), "{}", q.reason);
}

/// A rule that never fails but counts to 500 on every run (well within its limits, and
/// hundreds of times a normal rule's cost) is quarantined for its share of the engine's
/// time at the end of a window; the cheap rule beside it is not, and keeps firing.
#[test]
fn a_rule_eating_the_engines_time_is_quarantined_at_the_end_of_a_window() {
    let s = set(&[
        (
            "slow.rhai",
            &rule(
                "slow",
                "fn condition(event, profile) { let n = 0; for i in 0..500 { n += i; } n < 0 }",
            ),
        ),
        (
            "ok.rhai",
            &rule("fine", "fn condition(event, profile) { true }"),
        ),
    ]);
    let settings = MatchSettings {
        time_window: std::time::Duration::from_millis(200),
        // Below the slow rule's run on any machine, far above the cheap rule's.
        slow_run: std::time::Duration::from_micros(20),
        // Slow, not failing, even unoptimised.
        deadline: std::time::Duration::from_secs(1),
        ..MatchSettings::default()
    };
    let mut st = crate::state::SubscriberState::default();
    let (mut tripped, mut events) = (Vec::new(), 0);
    while tripped.is_empty() && events < 100_000 {
        let started = std::time::Instant::now();
        for _ in 0..32 {
            events += 1;
            let (_, fails) = eval(&s, &settings, &mut st, &sms(&format!("e{events}"))).unwrap();
            assert!(fails.is_empty(), "{fails:?}");
        }
        tripped = account(&s, &settings, started.elapsed());
    }
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    assert_eq!(tripped[0].rule_id, "slow");
    assert!(tripped[0].quarantined);
    let slow = s.get("slow").unwrap();
    assert!(slow.breaker.is_open());
    let q = slow.breaker.quarantine().unwrap();
    assert!(q.reason.starts_with("it took "), "{}", q.reason);
    assert!(
        q.reason.contains("engine.quarantine_time_share"),
        "{}",
        q.reason
    );
    assert!(!s.get("fine").unwrap().breaker.is_open());
    // From then on only the cheap rule runs.
    let before = slow.stats.snapshot().0;
    let (out, _) = eval(&s, &settings, &mut st, &sms("after")).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rule.meta.id, "fine");
    assert_eq!(slow.stats.snapshot().0, before, "not run once quarantined");
}

#[test]
fn a_success_between_failures_keeps_a_rule_in_service() {
    // Fails on odd event ids only: never `quarantine_after` failures in a row.
    let flaky = rule(
        "flaky",
        r#"fn condition(event, profile) { if event.id.ends_with("1") || event.id.ends_with("3") || event.id.ends_with("5") || event.id.ends_with("7") || event.id.ends_with("9") { throw "odd" } true }"#,
    );
    let s = set(&[("flaky.rhai", &flaky)]);
    let mut failed = 0;
    for i in 1..=20 {
        failed += run(&s, &sms(&format!("e{i}"))).1.len();
    }
    assert_eq!(failed, 10);
    assert!(!s.get("flaky").unwrap().breaker.is_open());
}

#[test]
fn quarantine_after_zero_never_quarantines() {
    let s = set(&[("grow.rhai", &rule("grow-array", GROW_ARRAY))]);
    let settings = MatchSettings {
        quarantine_after: 0,
        ..MatchSettings::default()
    };
    let mut st = crate::state::SubscriberState::default();
    for i in 0..8 {
        let (_, fails) = eval(&s, &settings, &mut st, &sms(&format!("e{i}"))).unwrap();
        assert_eq!(fails.len(), 1, "event {i}: still run, still failing");
        assert!(!fails[0].quarantined);
    }
    assert!(!s.rules[0].breaker.is_open());
}

#[test]
fn reloading_lifts_a_quarantine_and_a_still_bad_rule_trips_again() {
    let after = MatchSettings::default().quarantine_after as usize;
    let trip = |s: &RuleSet| -> Vec<usize> {
        // Which events (1-based) the bad rule failed on, over twice the threshold.
        (1..=2 * after)
            .filter(|i| !run(s, &sms(&format!("e{i}"))).1.is_empty())
            .collect()
    };
    let bad = set(&[("grow.rhai", &rule("grow-array", GROW_ARRAY))]);
    assert_eq!(trip(&bad), (1..=after).collect::<Vec<_>>());
    assert!(bad.rules[0].breaker.is_open());

    // The same file loaded again is a new rule set: in service, and quarantined again
    // after the same number of failures.
    let reloaded = set(&[("grow.rhai", &rule("grow-array", GROW_ARRAY))]);
    assert!(!reloaded.rules[0].breaker.is_open());
    assert_eq!(trip(&reloaded), (1..=after).collect::<Vec<_>>());
    assert!(reloaded.rules[0].breaker.is_open());

    // Fixed and reloaded: it runs and offers on every event.
    let fixed = set(&[(
        "grow.rhai",
        &rule(
            "grow-array",
            "fn condition(event, profile) { let seen = [event.peer]; seen.len() == 1 }",
        ),
    )]);
    for i in 1..=2 * after {
        let (recs, fails) = run(&fixed, &sms(&format!("e{i}")));
        assert!(fails.is_empty(), "{fails:?}");
        assert_eq!(recs.len(), 1);
    }
    assert!(!fixed.rules[0].breaker.is_open());
    assert!(fixed.rules[0].breaker.quarantine().is_none());
}

#[test]
fn eviction_drops_the_least_recently_used_saved_subscribers_only() {
    use crate::event::Msisdn;
    let mut shard = crate::engine::Shard::default();
    let m = |i: u64| Msisdn::parse(&format!("86139000{i:05}")).unwrap();
    let p = Arc::new(Profile::default());
    for i in 0..20 {
        shard.tick();
        shard.insert(m(i), Default::default(), p.clone());
    }
    // The oldest is changed and not yet saved: it must stay whatever its age.
    shard.entries.get_mut(&m(0)).unwrap().dirty = true;
    assert_eq!(shard.evict_to(10), 11, "down to 90 % of the cap");
    assert_eq!(shard.entries.len(), 9);
    assert!(shard.contains(&m(0)), "unsaved state is never dropped");
    for i in 12..20 {
        assert!(shard.contains(&m(i)), "recent {i} kept");
    }
    assert_eq!(shard.evict_to(10), 0, "under the cap nothing goes");
}

/// Kafka mode: a touchpoint request for a subscriber whose events another instance consumes
/// changes nothing that is saved; once this shard has the subscriber's events, it does.
#[test]
fn only_the_events_owner_saves_what_a_touchpoint_changes() {
    let mut shard = Shard::default();
    shard.events_own = true;
    let policy = to_anyone(&crate::config::Config::default());
    let profile = Arc::new(Profile::default());
    let req = crate::ports::OfferRequest {
        msisdn: crate::event::Msisdn::parse("8613900000001").unwrap(),
        campaign_id: None,
        request_id: Some("visit-1".into()),
        rule_id: "store-visit".into(),
        offer_code: "DATA_10G".into(),
        message: "10 GB".into(),
        channels: vec!["agent".into()],
        score: 0.5,
        valid_for_secs: 3600,
        at: chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap(),
        control_bp: None,
        service: false,
    };
    assert_eq!(shard.propose(&policy, &profile, &req).len(), 1);
    assert!(shard.take_dirty().is_empty(), "not this instance's to save");
    let set = set(&[(
        "ok.rhai",
        &rule("fine", "fn condition(event, profile) { true }"),
    )]);
    process(
        &mut shard,
        &set,
        &MatchSettings::default(),
        &policy,
        &sms("e1"),
    )
    .unwrap();
    assert_eq!(shard.take_dirty().len(), 1);
    shard.propose(
        &policy,
        &profile,
        &crate::ports::OfferRequest {
            request_id: Some("visit-2".into()),
            ..req
        },
    );
    assert_eq!(shard.take_dirty().len(), 1, "its owner saves it");
}

/// Answers come back as `offer_response` events: after a decline the offer is held back for
/// the policy's time, and the same stream run twice decides the same, answers included.
#[test]
fn a_declined_offer_is_held_back_and_replays_decide_the_same() {
    let s = set(&[(
        "a.rhai",
        &rule("bundle", "fn condition(event, profile) { true }"),
    )]);
    let stream = [
        r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{"peer":"p"}}"#,
        r#"{"id":"a1","type":"offer_response","msisdn":"8613900000001","ts":"2026-11-23T08:05:00+08:00","attrs":{"recommendation_id":"r-1","rule_id":"bundle","offer_code":"bundle-OFFER","outcome":"declined","channel":"sms"}}"#,
        r#"{"id":"e2","type":"sms","msisdn":"8613900000001","ts":"2026-11-25T08:00:00+08:00","attrs":{"peer":"p"}}"#,
        // A resent answer is a duplicate: it changes nothing.
        r#"{"id":"a1","type":"offer_response","msisdn":"8613900000001","ts":"2026-11-23T08:05:00+08:00","attrs":{"recommendation_id":"r-1","rule_id":"bundle","offer_code":"bundle-OFFER","outcome":"declined","channel":"sms"}}"#,
        r#"{"id":"e3","type":"sms","msisdn":"8613900000001","ts":"2026-12-08T08:06:00+08:00","attrs":{"peer":"p"}}"#,
    ];
    let go = || {
        let mut cfg = crate::config::Config::default();
        cfg.engine.daily_cap = 100;
        let mut policy = proposing(&cfg);
        policy.contact.suppress = crate::decision::contact::parse(
            std::path::Path::new("policy.toml"),
            "[[suppress]]\nafter = \"declined\"\nfor = \"14d\"\n",
            &cfg.channels.enabled,
        )
        .unwrap()
        .suppress;
        let mut shard = Shard::default();
        let mut recs = Vec::new();
        for line in stream {
            let ev = Arc::new(decode(line.as_bytes()).unwrap());
            // A resent answer is skipped as a duplicate.
            if let Ok((r, _)) = process(&mut shard, &s, &MatchSettings::default(), &policy, &ev) {
                recs.extend(r);
            }
        }
        recs
    };
    let recs = go();
    let reasons: Vec<(&str, Option<&str>)> = recs
        .iter()
        .map(|r| (r.trigger_event_id.as_deref().unwrap(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("e1", None),
            ("e2", Some("after_declined")),
            // 14 days after the answer the offer may be made again.
            ("e3", None),
        ]
    );
    let again = go();
    assert_eq!(
        serde_json::to_string(&recs).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
}

/// An A/B test of messages: subscribers split evenly and for good between the rule's own
/// message and its variants, each decision naming the variant it carries.
#[test]
fn message_variants_split_subscribers_evenly_and_stably() {
    let src = r#"#{ id: "ab", name: "ab", kind: "dynamic", events: ["sms"], channels: ["sms"],
        offer: #{ code: "AB-OFFER" }, message: "long text for {peer}",
        variants: #{ short: #{ en: "short for {peer}", zh: "短信 {peer}" } } };"#;
    let s = set(&[("ab.rhai", src)]);
    let decide = |i: u32| {
        let ev = Arc::new(
            decode(format!(r#"{{"id":"e{i}","type":"sms","msisdn":"86139{i:08}","ts":"2026-11-23T08:00:00+08:00","attrs":{{"peer":"p{i}"}}}}"#).as_bytes())
                .unwrap(),
        );
        run(&s, &ev).0.remove(0)
    };
    let mut short = 0;
    for i in 0..4000 {
        let r = decide(i);
        let variant = r.explanation.as_ref().unwrap().variant.clone().unwrap();
        match variant.as_str() {
            "short" => {
                short += 1;
                // In the subscriber's language (zh by default), the base falling back to en.
                assert_eq!(r.message, format!("短信 p{i}"));
            }
            "base" => assert_eq!(r.message, format!("long text for p{i}")),
            other => panic!("variant {other}"),
        }
        if i < 200 {
            assert_eq!(
                decide(i).explanation.unwrap().variant.as_deref(),
                Some(variant.as_str()),
                "the same subscriber sees the same variant"
            );
        }
    }
    let share = f64::from(short) / 4000.0;
    assert!((share - 0.5).abs() < 0.03, "short share {share}");
    let bad = r#"#{ id: "ab2", name: "ab", kind: "dynamic", events: ["sms"], channels: ["sms"],
        offer: #{ code: "X" }, message: "m", variants: #{ base: "again" } };"#;
    let e = load_sources(
        vec![(PathBuf::from("ab2.rhai"), bad.to_string())],
        &ScriptLimits::default(),
        &["sms".to_string()],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("`base` is the name of `message`"),
        "{e}"
    );
}

/// A visit says where the subscriber is: an app visit goes to the portal, a store visit to
/// the agent, whatever order the rule lists its channels in.
#[test]
fn a_visit_sends_the_offer_where_the_subscriber_is() {
    let src = r#"#{ id: "v", name: "v", kind: "dynamic", events: ["visit"], channels: ["sms", "portal", "agent"],
        offer: #{ code: "V" }, message: "m" };"#;
    let s = set(&[("v.rhai", src)]);
    let visit = |id: &str, channel: &str| {
        Arc::new(decode(format!(r#"{{"id":"{id}","type":"visit","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{{"channel":"{channel}"}}}}"#).as_bytes()).unwrap())
    };
    assert_eq!(run(&s, &visit("v1", "app")).0[0].channel, "portal");
    assert_eq!(run(&s, &visit("v2", "store")).0[0].channel, "agent");
    assert_eq!(run(&s, &visit("v3", "ivr")).0[0].channel, "sms");
}

/// An open page of the subscriber's is where they are now: the offer goes there first.
#[test]
fn an_open_page_is_where_the_subscriber_is_reached() {
    struct OnPortal;
    impl crate::ports::Reachability for OnPortal {
        fn here(&self, m: crate::event::Msisdn) -> Option<&'static str> {
            (m.to_string() == "8613900000001").then_some("portal")
        }
    }
    let src = r#"#{ id: "both", name: "both", kind: "dynamic", events: ["sms"], channels: ["sms", "portal"],
        offer: #{ code: "BOTH" }, message: "hi" };"#;
    let s = set(&[("both.rhai", src)]);
    let settings = MatchSettings::default();
    let policy = proposing(&crate::config::Config::default());
    let channel = |reachable: Option<Arc<dyn crate::ports::Reachability>>| {
        let mut shard = Shard::default();
        shard.reachable = reachable;
        let (recs, _) = process(&mut shard, &s, &settings, &policy, &sms("e1")).unwrap();
        recs[0].channel.clone()
    };
    assert_eq!(channel(None), "sms");
    assert_eq!(channel(Some(Arc::new(OnPortal))), "portal");
}
