//! The contact policy on real time arithmetic: event times in zones with and without
//! daylight saving, calendar and rolling windows, quiet hours, the control group.

use std::path::Path;

use super::contact::{self, Per};
use super::tests::{at, decide, m};
use super::*;
use crate::ports::Profile;

fn channels() -> Vec<String> {
    ["sms", "portal", "agent"].map(String::from).to_vec()
}

/// The default policy (a daily cap out of the way) with `toml` as `rules/policy.toml`.
fn policy(toml: &str) -> Policy {
    let mut c = crate::config::Config::default();
    c.engine.daily_cap = 100;
    c.engine.max_offers_per_event = 1;
    c.channels.enabled = channels();
    let mut pol = Policy::from_config(&c).unwrap();
    pol.market_unknown = true;
    let file = contact::parse(Path::new("policy.toml"), toml, &channels()).unwrap();
    pol.contact.caps.extend(file.caps);
    pol.contact.suppress = file.suppress;
    pol.contact.quiet = file.quiet;
    pol.contact.holdout_bp = file.holdout_bp;
    pol
}

/// Why `toml` is refused as `rules/policy.toml`.
fn refused(toml: &str) -> crate::rules::RuleError {
    contact::parse(Path::new("policy.toml"), toml, &channels()).unwrap_err()
}

fn offer(rule: &str, channels: &[&str], category: Category) -> Proposal {
    Proposal {
        validity_secs: 3 * 86400,
        cooldown_secs: 0,
        ..super::tests::p(rule, 0.5, channels, category)
    }
}

fn in_zone(tz: &str) -> Profile {
    Profile {
        timezone: tz.into(),
        ..Profile::default()
    }
}

/// Decides one offer of a fresh rule (no cooldown in the way) at `t`.
fn go(
    pol: &Policy,
    st: &mut SubscriberState,
    prof: &Profile,
    chans: &[&str],
    t: &str,
) -> Recommendation {
    let rule = format!("r{}", at(t).timestamp());
    decide(
        pol,
        vec![offer(&rule, chans, Category::Sales)],
        st,
        prof,
        format!("e-{t}"),
        t,
    )
    .remove(0)
}

#[test]
fn one_sms_a_local_day_over_a_daylight_saving_change() {
    let pol =
        policy("[[cap]]\nname = \"one SMS a day\"\nchannels = [\"sms\"]\nmax = 1\nper = \"day\"\n");
    // Berlin leaves summer time on 2026-10-25: that day has 25 hours.
    let prof = in_zone("Europe/Berlin");
    let mut st = SubscriberState::default();
    let first = go(&pol, &mut st, &prof, &["sms"], "2026-10-25T00:30:00+02:00");
    assert_eq!((first.status, first.reason), (Status::Queued, None));
    // 23:30 local is 25 hours later and still the same local day.
    let late = go(&pol, &mut st, &prof, &["sms"], "2026-10-25T23:30:00+01:00");
    assert_eq!(late.reason.as_deref(), Some("frequency_cap"));
    // A cap on SMS leaves the portal free: the offer goes there instead.
    let other = go(
        &pol,
        &mut st,
        &prof,
        &["sms", "portal"],
        "2026-10-25T23:40:00+01:00",
    );
    assert_eq!(
        (other.channel.as_str(), other.status),
        ("portal", Status::Queued)
    );
    let next = go(&pol, &mut st, &prof, &["sms"], "2026-10-26T00:05:00+01:00");
    assert_eq!((next.status, next.reason), (Status::Queued, None));
}

#[test]
fn three_marketing_messages_a_local_week_from_monday() {
    let pol = policy("[[cap]]\nmax = 3\nper = \"week\"\n");
    // New York leaves summer time on Sunday 2026-11-01; weeks start on Monday locally.
    let prof = in_zone("America/New_York");
    let mut st = SubscriberState::default();
    for t in [
        "2026-10-26T09:00:00-04:00",
        "2026-10-28T09:00:00-04:00",
        "2026-10-31T09:00:00-04:00",
    ] {
        assert_eq!(go(&pol, &mut st, &prof, &["sms"], t).reason, None, "{t}");
    }
    // Across channels: the portal counts too. Sunday 23:30 EST is Monday 04:30 UTC.
    let sunday = go(
        &pol,
        &mut st,
        &prof,
        &["portal"],
        "2026-11-01T23:30:00-05:00",
    );
    assert_eq!(sunday.reason.as_deref(), Some("frequency_cap"));
    let monday = go(
        &pol,
        &mut st,
        &prof,
        &["portal"],
        "2026-11-02T00:10:00-05:00",
    );
    assert_eq!(monday.reason, None);
}

#[test]
fn rolling_windows_count_both_sides_of_a_late_event() {
    let pol = policy("[[cap]]\nchannels = [\"sms\"]\nmax = 1\nper = \"24h\"\n");
    let prof = Profile::default();
    let mut st = SubscriberState::default();
    assert_eq!(
        go(&pol, &mut st, &prof, &["sms"], "2026-11-23T10:00:00+08:00").reason,
        None
    );
    // Past local midnight, but within 24 hours: still capped.
    let within = go(&pol, &mut st, &prof, &["sms"], "2026-11-24T09:58:00+08:00");
    assert_eq!(within.reason.as_deref(), Some("frequency_cap"));
    // A late event an hour before the first send would put two in one window.
    let late = go(&pol, &mut st, &prof, &["sms"], "2026-11-23T09:00:00+08:00");
    assert_eq!(late.reason.as_deref(), Some("frequency_cap"));
    let after = go(&pol, &mut st, &prof, &["sms"], "2026-11-24T10:00:00+08:00");
    assert_eq!(after.reason, None);
}

#[test]
fn a_quiet_hour_sms_is_deferred_to_the_window_end_and_portal_is_not() {
    let pol = policy("[quiet_hours]\nfrom = \"21:00\"\nto = \"08:00\"\nchannels = [\"sms\"]\n");
    let prof = Profile::default(); // Asia/Shanghai
    let mut st = SubscriberState::default();
    let sms = go(&pol, &mut st, &prof, &["sms"], "2026-11-23T22:30:00+08:00");
    assert_eq!(sms.status, Status::Deferred);
    assert_eq!(sms.reason.as_deref(), Some("quiet_hours"));
    assert_eq!(sms.not_before, Some(at("2026-11-24T08:00:00+08:00")));
    // After midnight the end is the same morning.
    let early = go(&pol, &mut st, &prof, &["sms"], "2026-11-24T06:00:00+08:00");
    assert_eq!(early.not_before, Some(at("2026-11-24T08:00:00+08:00")));
    let portal = go(
        &pol,
        &mut st,
        &prof,
        &["portal"],
        "2026-11-23T22:30:00+08:00",
    );
    assert_eq!((portal.status, portal.not_before), (Status::Queued, None));
    let day = go(&pol, &mut st, &prof, &["sms"], "2026-11-24T12:00:00+08:00");
    assert_eq!((day.status, day.not_before), (Status::Queued, None));
    // Service messages are not held.
    let svc = pol
        .decide(
            vec![offer("svc", &["sms"], Category::Service)],
            &mut st,
            &prof,
            m(),
            &Trigger::Event("svc".into()),
            at("2026-11-23T23:00:00+08:00"),
        )
        .remove(0);
    assert_eq!(svc.status, Status::Queued);
    // An offer that would expire before the morning is not sent at all.
    let mut short = offer("short", &["sms"], Category::Sales);
    short.validity_secs = 3600;
    let gone = pol
        .decide(
            vec![short],
            &mut st,
            &prof,
            m(),
            &Trigger::Event("short".into()),
            at("2026-11-23T22:00:00+08:00"),
        )
        .remove(0);
    assert_eq!(
        (gone.status, gone.reason.as_deref()),
        (Status::Suppressed, Some("quiet_hours"))
    );
}

#[test]
fn quiet_hours_end_in_local_time_across_a_spring_forward_gap() {
    // Berlin skips 02:00-03:00 on 2026-03-29: a window ending at 02:30 ends at 03:00 CEST.
    let pol = policy("[quiet_hours]\nfrom = \"22:00\"\nto = \"02:30\"\nchannels = [\"sms\"]\n");
    let mut st = SubscriberState::default();
    let r = go(
        &pol,
        &mut st,
        &in_zone("Europe/Berlin"),
        &["sms"],
        "2026-03-28T23:00:00+01:00",
    );
    assert_eq!(r.not_before, Some(at("2026-03-29T03:00:00+02:00")));
}

#[test]
fn a_deferred_message_counts_on_the_day_it_goes_out() {
    let pol = policy(
        "[[cap]]\nchannels = [\"sms\"]\nmax = 1\nper = \"day\"\n\n\
         [quiet_hours]\nfrom = \"21:00\"\nto = \"08:00\"\nchannels = [\"sms\"]\n",
    );
    let prof = Profile::default();
    let mut st = SubscriberState::default();
    let evening = go(&pol, &mut st, &prof, &["sms"], "2026-11-23T22:00:00+08:00");
    assert_eq!(evening.status, Status::Deferred);
    // It goes out on the 24th: the 24th's SMS is taken, the 23rd's is not.
    let noon = go(&pol, &mut st, &prof, &["sms"], "2026-11-24T12:00:00+08:00");
    assert_eq!(noon.reason.as_deref(), Some("frequency_cap"));
}

#[test]
fn the_control_group_is_stable_and_its_share_is_on_target() {
    let pol = policy("[control]\nholdout = \"10%\"\n");
    let prof = Profile::default();
    let decide = |n: u64, rule: &str| {
        let msisdn = Msisdn::parse(&format!("86139{n:08}")).unwrap();
        let mut st = SubscriberState::default();
        pol.decide(
            vec![
                offer(rule, &["sms"], Category::Sales),
                Proposal {
                    score: 0.1,
                    ..offer("runner-up", &["sms"], Category::Sales)
                },
            ],
            &mut st,
            &prof,
            msisdn,
            &Trigger::Event(format!("e{n}")),
            at("2026-11-23T10:00:00+08:00"),
        )
    };
    let n = 100_000u64;
    let mut held = 0;
    for i in 0..n {
        let recs = decide(i, "welcome");
        if recs[0].reason.as_deref() == Some("control_group") {
            held += 1;
            assert_eq!(recs[0].status, Status::Suppressed);
            // Held out in place of the winner: the runner-up is not sent instead.
            assert_eq!(recs[1].reason.as_deref(), Some("lost_arbitration"));
        } else {
            assert_eq!(recs[0].status, Status::Queued);
        }
    }
    let share = held as f64 / n as f64;
    assert!((share - 0.10).abs() < 0.01, "control share {share}");
    // The same subscriber is always in or always out; another rule draws anew.
    let members: Vec<bool> = (0..1000)
        .map(|i| decide(i, "welcome")[0].reason.as_deref() == Some("control_group"))
        .collect();
    let again: Vec<bool> = (0..1000)
        .map(|i| decide(i, "welcome")[0].reason.as_deref() == Some("control_group"))
        .collect();
    assert_eq!(members, again);
    let other: Vec<bool> = (0..1000)
        .map(|i| decide(i, "other-rule")[0].reason.as_deref() == Some("control_group"))
        .collect();
    assert_ne!(members, other);
    // A rule's own share overrides the policy's; service messages are never held out.
    let mut none = offer("welcome", &["sms"], Category::Sales);
    none.control_bp = Some(0);
    let mut svc = offer("notice", &["sms"], Category::Service);
    svc.control_bp = Some(10_000);
    for i in 0..200 {
        let msisdn = Msisdn::parse(&format!("86139{i:08}")).unwrap();
        for p in [none.clone(), svc.clone()] {
            let r = pol
                .decide(
                    vec![p],
                    &mut SubscriberState::default(),
                    &prof,
                    msisdn,
                    &Trigger::Event("x".into()),
                    at("2026-11-23T10:00:00+08:00"),
                )
                .remove(0);
            assert_eq!(r.status, Status::Queued);
        }
    }
}

#[test]
fn contacts_are_forgotten_past_the_longest_window() {
    let pol = policy("[[cap]]\nmax = 5\nper = \"7d\"\n");
    assert_eq!(pol.contact.horizon_secs(), 7 * 86400);
    assert!(matches!(pol.contact.caps[1].per, Per::Rolling(s) if s == 7 * 86400));
    let prof = Profile::default();
    let mut st = SubscriberState::default();
    go(&pol, &mut st, &prof, &["sms"], "2026-11-01T10:00:00+08:00");
    go(&pol, &mut st, &prof, &["sms"], "2026-11-05T10:00:00+08:00");
    assert_eq!(st.contacts.len(), 2);
    go(&pol, &mut st, &prof, &["sms"], "2026-11-20T10:00:00+08:00");
    assert_eq!(st.contacts.len(), 1, "only the last week's contact is kept");
}

#[test]
fn policy_files_are_checked_with_line_and_column() {
    let bad =
        |toml: &str| contact::parse(Path::new("rules/policy.toml"), toml, &channels()).unwrap_err();
    let e = bad("[[cap]]\nmax = 1\nper = \"fortnight\"\n");
    assert_eq!((e.line, e.column), (3, 7), "{e}");
    assert!(e.message.contains("\"day\", \"week\""), "{e}");
    let e = bad("[[cap]]\nmax = 1\nper = \"day\"\nchannels = [\"fax\"]\n");
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("unknown channel \"fax\""), "{e}");
    let e = bad("[quiet_hours]\nfrom = \"9pm\"\nto = \"08:00\"\nchannels = [\"sms\"]\n");
    assert_eq!(e.line, 2, "{e}");
    let e = bad("[control]\nholdout = \"110%\"\n");
    assert_eq!(e.line, 2, "{e}");
    let e = bad("\n[[cap]]\nmax = 1\nper = \"day\"\nlimit = 3\n");
    assert_eq!(e.line, 5, "{e}");
    assert!(e.message.contains("unknown field"), "{e}");
    assert!(e.to_string().starts_with("rules/policy.toml:5:"), "{e}");
}

fn answered(st: &mut SubscriberState, offer_code: &str, outcome: &str, t: &str) {
    st.log_outcome(crate::state::Outcome {
        minute: (at(t).timestamp() / 60) as u32,
        offer: crate::state::offer_key(offer_code),
        kind: crate::state::OutcomeKind::parse(outcome).unwrap(),
    });
}

#[test]
fn ignored_twice_in_thirty_days_holds_the_offer_for_sixty() {
    let pol =
        policy("[[suppress]]\nafter = \"ignored\"\ntimes = 2\nwithin = \"30d\"\nfor = \"60d\"\n");
    let prof = Profile::default();
    let decide = |st: &mut SubscriberState, t: &str| {
        decide(
            &pol,
            vec![offer("any-rule", &["sms"], Category::Sales)],
            st,
            &prof,
            format!("e-{t}"),
            t,
        )
        .remove(0)
        .reason
    };
    let mut st = SubscriberState::default();
    answered(
        &mut st,
        "any-rule-O",
        "ignored",
        "2026-10-01T10:00:00+08:00",
    );
    assert_eq!(
        decide(&mut st, "2026-10-05T10:00:00+08:00"),
        None,
        "once is not twice"
    );
    // Another offer's answers do not count.
    answered(&mut st, "other-O", "ignored", "2026-10-06T10:00:00+08:00");
    assert_eq!(decide(&mut st, "2026-10-07T10:00:00+08:00"), None);
    answered(
        &mut st,
        "any-rule-O",
        "ignored",
        "2026-10-20T10:00:00+08:00",
    );
    assert_eq!(
        decide(&mut st, "2026-10-21T10:00:00+08:00").as_deref(),
        Some("after_ignored")
    );
    assert_eq!(
        decide(&mut st, "2026-12-18T10:00:00+08:00").as_deref(),
        Some("after_ignored"),
        "59 days after the second"
    );
    assert_eq!(
        decide(&mut st, "2026-12-19T10:05:00+08:00"),
        None,
        "60 days after"
    );
    // Two ignores further apart than 30 days do not add up.
    let mut apart = SubscriberState::default();
    answered(
        &mut apart,
        "any-rule-O",
        "ignored",
        "2026-10-01T10:00:00+08:00",
    );
    answered(
        &mut apart,
        "any-rule-O",
        "ignored",
        "2026-11-05T10:00:00+08:00",
    );
    assert_eq!(decide(&mut apart, "2026-11-06T10:00:00+08:00"), None);
}

#[test]
fn arbitration_ranks_by_score_value_lever_and_channel_and_names_the_winner() {
    let mut pol = policy("");
    pol.contact.arbitration = contact::parse(
        Path::new("policy.toml"),
        "[arbitration]\noffer_value = { big-O = 3.0 }\nlever = { push = 1.5 }\nchannel_weight = { portal = 0.5 }\n",
        &channels(),
    )
    .unwrap()
    .arbitration;
    let mut st = SubscriberState::default();
    let p = |rule: &str, score: f64, chans: &[&str]| Proposal {
        score,
        ..offer(rule, chans, Category::Sales)
    };
    let recs = pol.decide(
        vec![
            p("small", 0.6, &["sms"]),
            p("big", 0.3, &["sms"]),
            p("push", 0.5, &["portal"]),
        ],
        &mut st,
        &Profile::default(),
        m(),
        &Trigger::Event("e".into()),
        at("2026-11-23T10:00:00+08:00"),
    );
    let order: Vec<(&str, f64)> = recs
        .iter()
        .map(|r| (r.rule_id.as_str(), r.explanation.as_ref().unwrap().priority))
        .collect();
    // big: 0.3 x 3 = 0.9; small: 0.6; push: 0.5 x 1.5 x 0.5 = 0.375.
    assert_eq!(order, vec![("big", 0.9), ("small", 0.6), ("push", 0.375)]);
    assert_eq!(recs[0].reason, None);
    let e = recs[2].explanation.as_ref().unwrap();
    assert_eq!((e.score, e.value, e.lever, e.channel), (0.5, 1.0, 1.5, 0.5));
    for loser in &recs[1..] {
        assert_eq!(loser.reason.as_deref(), Some("lost_arbitration"));
        assert_eq!(
            loser.explanation.as_ref().unwrap().winner.as_deref(),
            Some(recs[0].id.as_str())
        );
    }
    assert_eq!(recs[0].explanation.as_ref().unwrap().winner, None);
    let e = refused("[arbitration]\nchannel_weight = { fax = 2.0 }\n");
    assert!(e.message.contains("unknown channel \"fax\""), "{e}");
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn the_channel_is_where_the_subscriber_is_then_the_one_they_prefer() {
    let pol = policy("");
    let mut st = SubscriberState::default();
    let mut prefers_portal = Profile::default();
    prefers_portal
        .extra
        .insert("preferred_channel".into(), serde_json::json!("portal"));
    let decide = |p: Proposal, prof: &Profile, st: &mut SubscriberState| {
        decide(
            &pol,
            vec![p],
            st,
            prof,
            format!("e{}", st.contacts.len()),
            "2026-11-23T10:00:00+08:00",
        )
        .remove(0)
    };
    let listed = offer("a", &["sms", "portal", "agent"], Category::Sales);
    assert_eq!(
        decide(listed.clone(), &Profile::default(), &mut st).channel,
        "sms"
    );
    assert_eq!(
        decide(listed.clone(), &prefers_portal, &mut st).channel,
        "portal"
    );
    // At a store the agent is in front of them: that wins over the preference.
    let at_store = Proposal {
        here: Some("agent".into()),
        ..listed.clone()
    };
    assert_eq!(decide(at_store, &prefers_portal, &mut st).channel, "agent");
    // A preference the rule does not list changes nothing; an opted-out one is skipped.
    let sms_only = offer("b", &["sms"], Category::Sales);
    assert_eq!(decide(sms_only, &prefers_portal, &mut st).channel, "sms");
    let mut no_portal = prefers_portal.clone();
    no_portal.opt_outs = vec!["portal".into()];
    assert_eq!(decide(listed, &no_portal, &mut st).channel, "sms");
}

/// The whole policy file, parsed (the test `policy` keeps only some sections).
fn with_file(mut pol: Policy, toml: &str) -> Policy {
    let file = contact::parse(Path::new("policy.toml"), toml, &channels()).unwrap();
    pol.contact.arbitration = file.arbitration;
    pol.contact.capacity = file.capacity;
    pol.contact.offer_cooldowns = file.offer_cooldowns;
    pol
}

#[test]
fn top_n_per_channel_and_the_same_offer_goes_out_once() {
    let mut pol = with_file(
        policy(""),
        "[arbitration]\ntop_n = { sms = 1, portal = 2 }\n",
    );
    pol.max_offers_per_event = 10;
    let p = |rule: &str, score: f64, chans: &[&str]| Proposal {
        score,
        ..offer(rule, chans, Category::Sales)
    };
    let same_offer = Proposal {
        offer_code: "a-O".into(),
        ..p("a2", 0.85, &["portal"])
    };
    let recs = pol.decide(
        vec![
            p("a", 0.9, &["sms"]),
            same_offer,
            p("b", 0.8, &["sms", "portal"]),
            p("c", 0.7, &["sms"]),
            p("d", 0.6, &["portal"]),
            p("e", 0.5, &["portal"]),
        ],
        &mut SubscriberState::default(),
        &Profile::default(),
        m(),
        &Trigger::Event("e".into()),
        at("2026-11-23T10:00:00+08:00"),
    );
    let got: Vec<(&str, &str, Option<&str>)> = recs
        .iter()
        .map(|r| (r.rule_id.as_str(), r.channel.as_str(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", "sms", None),
            // a2 proposes a's offer: it does not go out a second time, on another channel.
            ("a2", "portal", Some("lost_arbitration")),
            // SMS takes one: b moves to the portal, c has nowhere else to go.
            ("b", "portal", None),
            ("c", "sms", Some("lost_arbitration")),
            ("d", "portal", None),
            ("e", "portal", Some("lost_arbitration")),
        ]
    );
    let winner = |i: usize| recs[i].explanation.as_ref().unwrap().winner.clone();
    assert_eq!(winner(1).as_deref(), Some(recs[0].id.as_str()));
    assert_eq!(winner(3).as_deref(), Some(recs[0].id.as_str()));
    assert_eq!(winner(5).as_deref(), Some(recs[2].id.as_str()));
    let e = refused("[arbitration]\ntop_n = { sms = 0 }\n");
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn the_cheaper_channel_goes_first_and_the_cost_is_explained() {
    let pol = with_file(
        policy(""),
        "[arbitration]\nchannel_cost = { sms = 0.05, agent = 3.0, portal = 0.0 }\n",
    );
    let mut st = SubscriberState::default();
    let rec = go(
        &pol,
        &mut st,
        &Profile::default(),
        &["agent", "sms", "portal"],
        "2026-11-23T10:00:00+08:00",
    );
    assert_eq!(rec.channel, "portal");
    assert_eq!(rec.explanation.unwrap().cost, Some(0.0));
    // Being somewhere still comes before cost: at a store, the agent it is.
    let at_store = Proposal {
        here: Some("agent".into()),
        ..offer("s", &["sms", "agent"], Category::Sales)
    };
    let rec = pol
        .decide(
            vec![at_store],
            &mut st,
            &Profile::default(),
            m(),
            &Trigger::Event("store".into()),
            at("2026-11-23T11:00:00+08:00"),
        )
        .remove(0);
    assert_eq!(rec.channel, "agent");
    assert_eq!(rec.explanation.unwrap().cost, Some(3.0));
}

#[test]
fn a_channel_at_capacity_for_the_day_passes_offers_on_or_suppresses_them() {
    let pol = with_file(policy(""), "[capacity]\nagent = 2\n");
    // Every subscriber counts against the channel's day (the operator's zone, UTC+8 here).
    let decide = |n: u32, chans: &[&str], t: &str| {
        let who = Msisdn::parse(&format!("86139000001{n:02}")).unwrap();
        pol.decide(
            vec![offer("cb", chans, Category::Sales)],
            &mut SubscriberState::default(),
            &in_zone("Asia/Shanghai"),
            who,
            &Trigger::Event(format!("e{n}")),
            at(t),
        )
        .remove(0)
    };
    let day = "2026-11-23T10:00:00+08:00";
    assert_eq!(decide(1, &["agent", "sms"], day).channel, "agent");
    assert_eq!(decide(2, &["agent", "sms"], day).channel, "agent");
    let third = decide(3, &["agent", "sms"], day);
    assert_eq!((third.channel.as_str(), third.reason), ("sms", None));
    let fourth = decide(4, &["agent"], day);
    assert_eq!(fourth.reason.as_deref(), Some("channel_capacity"));
    // Suppressed offers take nothing; the next local day starts again.
    let next = decide(5, &["agent"], "2026-11-24T00:10:00+08:00");
    assert_eq!((next.channel.as_str(), next.reason), ("agent", None));
    // A reload keeps the day's count.
    let mut c = crate::config::Config::default();
    c.channels.enabled = channels();
    let reloaded = pol.reloaded(&c).unwrap();
    assert!(std::sync::Arc::ptr_eq(&reloaded.capacity, &pol.capacity));
}

#[test]
fn offers_within_the_arbitration_window_compete_and_the_better_one_replaces_the_waiting_one() {
    let pol = with_file(
        policy(""),
        "[arbitration]\nwindow = \"10m\"\nwindow_channels = [\"sms\"]\n",
    );
    let mut st = SubscriberState::default();
    let mut revoked = Vec::new();
    let mut decide = |rule: &str, score: f64, chans: &[&str], t: &str, st: &mut SubscriberState| {
        let p = Proposal {
            score,
            cooldown_secs: 3600,
            ..offer(rule, chans, Category::Sales)
        };
        let r = pol
            .decide_revoking(
                vec![p],
                st,
                &Profile::default(),
                m(),
                &Trigger::Event(format!("e-{rule}")),
                at(t),
                &mut revoked,
            )
            .remove(0);
        (r, std::mem::take(&mut revoked))
    };
    // The first waits until the window closes, 10 minutes on.
    let (first, none) = decide("a", 0.5, &["sms"], "2026-11-23T10:00:00+08:00", &mut st);
    assert!(none.is_empty());
    assert_eq!(
        (first.status, first.reason.as_deref()),
        (Status::Deferred, Some("arbitration_window"))
    );
    assert_eq!(first.not_before, Some(at("2026-11-23T10:10:00+08:00")));
    // A worse one inside the window loses to it.
    let (worse, none) = decide("b", 0.3, &["sms"], "2026-11-23T10:04:00+08:00", &mut st);
    assert!(none.is_empty());
    assert_eq!(worse.reason.as_deref(), Some("lost_arbitration"));
    assert_eq!(
        worse.explanation.unwrap().winner.as_deref(),
        Some(first.id.as_str())
    );
    // A portal offer does not wait, and does not compete with the SMS.
    let (portal, _) = decide("p", 0.2, &["portal"], "2026-11-23T10:05:00+08:00", &mut st);
    assert_eq!((portal.status, portal.reason), (Status::Queued, None));
    // A better one takes the waiting one's place, and its slot at the window's end.
    let (better, replaced) = decide("c", 0.9, &["sms"], "2026-11-23T10:06:00+08:00", &mut st);
    assert_eq!(better.status, Status::Deferred);
    assert_eq!(better.not_before, first.not_before);
    assert_eq!(
        replaced,
        vec![Revoked {
            id: first.id.clone(),
            winner: better.id.clone()
        }]
    );
    // The replaced offer gave back its contact and its cooldown: rule `a` may offer again.
    let sms = contact::channel_key("sms");
    assert_eq!(st.contacts.iter().filter(|c| c.channel == sms).count(), 1);
    assert_eq!(st.cooldowns.len(), 2, "{:?}", st.cooldowns);
    // After the window closed, the next offer starts a new one.
    let (later, none) = decide("d", 0.1, &["sms"], "2026-11-23T10:30:00+08:00", &mut st);
    assert!(none.is_empty());
    assert_eq!(later.reason.as_deref(), Some("arbitration_window"));
    assert_eq!(later.not_before, Some(at("2026-11-23T10:40:00+08:00")));
    let e = refused("[arbitration]\nwindow = \"soon\"\n");
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn an_offer_cooldown_holds_the_offer_whichever_rule_makes_it() {
    let pol = with_file(policy(""), "[cooldown]\noffers = { SHARED-O = \"7d\" }\n");
    let mut st = SubscriberState::default();
    let mut decide = |rule: &str, t: &str| {
        let p = Proposal {
            offer_code: "SHARED-O".into(),
            ..offer(rule, &["sms"], Category::Sales)
        };
        decide(
            &pol,
            vec![p],
            &mut st,
            &Profile::default(),
            format!("e-{rule}-{t}"),
            t,
        )
        .remove(0)
    };
    assert_eq!(decide("a", "2026-11-02T10:00:00+08:00").reason, None);
    let other_rule = decide("b", "2026-11-05T10:00:00+08:00");
    assert_eq!(other_rule.reason.as_deref(), Some("cooldown"));
    assert_eq!(decide("b", "2026-11-09T10:01:00+08:00").reason, None);
    let e = refused("[cooldown]\noffers = { X = \"a week\" }\n");
    assert_eq!(e.line, 2, "{e}");
}
