use super::*;
use crate::ports::Profile;

fn policy() -> Policy {
    policy_with_cap(2)
}

/// One offer an event, at most `daily_cap` a day.
pub(super) fn policy_with_cap(daily_cap: u32) -> Policy {
    let mut c = crate::config::Config::default();
    c.engine.daily_cap = daily_cap;
    c.engine.max_offers_per_event = 1;
    let mut p = Policy::from_config(&c).unwrap();
    // These subscribers are decided for as if the CRM knew them (see the test of
    // `unknown_subscriber` for the default).
    p.market_unknown = true;
    p
}

/// A proposal of `rule` (offer `{rule}-O`), valid a day, with an hour's cooldown.
pub(super) fn p(rule: &str, score: f64, channels: &[&str], category: Category) -> Proposal {
    Proposal {
        rule_id: rule.into(),
        offer_code: format!("{rule}-O"),
        message: "m".into(),
        score,
        channels: channels.iter().map(|c| c.to_string()).collect(),
        validity_secs: 86400,
        cooldown_secs: 3600,
        category,
        control_bp: None,
        variant: None,
        here: None,
    }
}

pub(super) fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

pub(super) fn m() -> Msisdn {
    Msisdn::parse("8613900000001").unwrap()
}

/// `proposals` for [`m`] on the event `event` at `t` (RFC 3339).
pub(super) fn decide(
    pol: &Policy,
    proposals: Vec<Proposal>,
    st: &mut SubscriberState,
    prof: &Profile,
    event: impl Into<String>,
    t: &str,
) -> Vec<Recommendation> {
    pol.decide(
        proposals,
        st,
        prof,
        m(),
        &Trigger::Event(event.into()),
        at(t),
    )
}

fn reasons(recs: &[Recommendation]) -> Vec<Option<&str>> {
    recs.iter().map(|r| r.reason.as_deref()).collect()
}

#[test]
fn highest_score_wins_and_the_rest_lose_arbitration() {
    let mut st = SubscriberState::default();
    let proposals = vec![
        p("low", 0.2, &["sms"], Category::Sales),
        p("high", 0.9, &["sms"], Category::Sales),
    ];
    let recs = decide(
        &policy(),
        proposals,
        &mut st,
        &Profile::default(),
        "e1",
        "2026-11-23T08:00:00+08:00",
    );
    assert_eq!(recs[0].rule_id, "high");
    assert_eq!(recs[0].status, Status::Queued);
    assert_eq!(reasons(&recs), vec![None, Some("lost_arbitration")]);
}

#[test]
fn cooldown_then_daily_cap_in_local_days() {
    let pol = policy();
    let prof = Profile::default();
    let mut st = SubscriberState::default();
    let go = |st: &mut SubscriberState, rule: &str, t: &str| {
        decide(
            &pol,
            vec![p(rule, 0.5, &["sms"], Category::Sales)],
            st,
            &prof,
            format!("{rule}{t}"),
            t,
        )
    };
    for (rule, t, reason) in [
        ("a", "2026-11-23T08:00:00+08:00", None),
        ("a", "2026-11-23T08:30:00+08:00", Some("cooldown")),
        ("a", "2026-11-23T09:30:00+08:00", None),
        ("b", "2026-11-23T10:00:00+08:00", Some("frequency_cap")),
        // Midnight in Shanghai (16:00 UTC) starts a new day; UTC midnight does not.
        ("b", "2026-11-23T23:30:00+08:00", Some("frequency_cap")),
        ("b", "2026-11-24T00:10:00+08:00", None),
    ] {
        assert_eq!(
            reasons(&go(&mut st, rule, t)),
            vec![reason],
            "{rule} at {t}"
        );
    }
    // Service messages are not marketing: never capped.
    let mut sms = |rule: &str, category, event: &str, t: &str| {
        let proposal = p(rule, 0.1, &["sms"], category);
        decide(&pol, vec![proposal], &mut st, &prof, event, t)
    };
    let svc = sms("svc", Category::Service, "s", "2026-11-24T00:20:00+08:00");
    let again = sms("svc2", Category::Service, "s2", "2026-11-24T00:30:00+08:00");
    let capped = sms("c", Category::Sales, "c", "2026-11-24T00:40:00+08:00");
    assert_eq!(reasons(&svc), vec![None]);
    assert_eq!(reasons(&again), vec![None]);
    // Service messages did not use up the cap: one marketing slot is still free, then none.
    assert_eq!(reasons(&capped), vec![None]);
    let over = sms("d", Category::Sales, "d", "2026-11-24T00:50:00+08:00");
    assert_eq!(reasons(&over), vec![Some("frequency_cap")]);
}

#[test]
fn opt_outs_fall_back_to_another_channel_or_suppress() {
    let pol = policy();
    let mut st = SubscriberState::default();
    let prof = Profile {
        opt_outs: vec!["sms".into()],
        ..Profile::default()
    };
    let recs = decide(
        &pol,
        vec![p("a", 0.5, &["sms", "portal"], Category::Sales)],
        &mut st,
        &prof,
        "e",
        "2026-11-23T08:00:00+08:00",
    );
    assert_eq!(recs[0].channel, "portal");
    assert_eq!(recs[0].status, Status::Queued);
    let all = Profile {
        opt_outs: vec!["all".into()],
        ..Profile::default()
    };
    let recs = decide(
        &pol,
        vec![p("b", 0.5, &["sms", "portal"], Category::Sales)],
        &mut st,
        &all,
        "e2",
        "2026-11-23T08:00:00+08:00",
    );
    assert_eq!(recs[0].status, Status::Suppressed);
    assert_eq!(recs[0].reason.as_deref(), Some("opt_out"));
    let recs = decide(
        &pol,
        vec![p("c", 0.5, &["fax"], Category::Sales)],
        &mut st,
        &Profile::default(),
        "e3",
        "2026-11-23T08:00:00+08:00",
    );
    assert_eq!(recs[0].reason.as_deref(), Some("channel_unavailable"));
}

#[test]
fn complaints_hold_sales_but_not_care() {
    let pol = policy();
    let mut st = SubscriberState {
        last_complaint: at("2026-11-20T08:00:00+08:00").timestamp(),
        ..Default::default()
    };
    let recs = decide(
        &pol,
        vec![
            p("sale", 0.9, &["sms"], Category::Sales),
            p("care", 0.1, &["sms"], Category::Care),
        ],
        &mut st,
        &Profile::default(),
        "e",
        "2026-11-23T08:00:00+08:00",
    );
    assert_eq!(reasons(&recs), vec![Some("complaint_hold"), None]);
    assert_eq!(recs[1].rule_id, "care");
}

#[test]
fn numbers_the_crm_does_not_know_get_service_messages_only_by_default() {
    let pol = Policy::from_config(&crate::config::Config::default()).unwrap();
    assert!(!pol.market_unknown);
    let decide = |profile: &Profile| {
        decide(
            &pol,
            vec![
                p("sale", 0.9, &["sms"], Category::Sales),
                p("notice", 0.1, &["portal"], Category::Service),
            ],
            &mut SubscriberState::default(),
            profile,
            "e",
            "2026-11-23T10:00:00+08:00",
        )
    };
    let unknown = decide(&Profile::default());
    assert_eq!(reasons(&unknown), vec![Some("unknown_subscriber"), None]);
    assert_eq!(unknown[0].status, Status::Suppressed);
    let known = Profile {
        known: true,
        ..Profile::default()
    };
    // Known, the sale wins (one offer an event) and the notice loses arbitration to it.
    assert_eq!(
        reasons(&decide(&known)),
        vec![None, Some("lost_arbitration")]
    );
    let mut c = crate::config::Config::default();
    c.engine.unknown_subscribers = "anyone".into();
    assert!(Policy::from_config(&c)
        .unwrap_err()
        .contains("service_only or market"));
}

#[test]
fn ids_are_stable_per_rule_subscriber_trigger_and_channel() {
    let t = Trigger::Event("e1".into());
    assert_eq!(
        recommendation_id("r", m(), &t, "sms"),
        recommendation_id("r", m(), &t, "sms")
    );
    assert_ne!(
        recommendation_id("r", m(), &t, "sms"),
        recommendation_id("r", m(), &t, "portal")
    );
    assert_ne!(
        recommendation_id("r", m(), &t, "sms"),
        recommendation_id("r", m(), &Trigger::Campaign("e1".into()), "sms")
    );
    assert!(recommendation_id("r", m(), &t, "sms").starts_with("r-"));
}

#[test]
fn ids_and_cooldown_keys_keep_their_persisted_form() {
    // Stored recommendations and cooldowns are found again only if these never change.
    let id = recommendation_id("roaming-welcome", m(), &Trigger::Event("e-1".into()), "sms");
    let name = "roaming-welcome|8613900000001|e:e-1|sms";
    let want = Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).simple();
    assert_eq!(id, format!("r-{want}"));
    let campaign = recommendation_id("r", m(), &Trigger::Campaign("c9".into()), "agent");
    let want = Uuid::new_v5(&Uuid::NAMESPACE_OID, b"r|8613900000001|c:c9|agent").simple();
    assert_eq!(campaign, format!("r-{want}"));
    let zeros = Msisdn::parse("0012345").unwrap();
    let request = recommendation_id("é-rule", zeros, &Trigger::Request("q1".into()), "portal");
    let want = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        "é-rule|0012345|q:q1|portal".as_bytes(),
    )
    .simple();
    assert_eq!(request, format!("r-{want}"));
    assert_eq!(
        cooldown_key("sms-bundle", "SMS-BUNDLE-200"),
        crate::state::id_hash("sms-bundle|SMS-BUNDLE-200") as u32
    );
}

#[test]
fn opt_outs_are_per_purpose_a_service_notice_reads_only_service_refusals() {
    let pol = policy();
    let mut st = SubscriberState::default();
    let mut prof = Profile {
        opt_outs: vec!["all".into()],
        ..Profile::default()
    };
    let decide = |rule: &str, cat: Category, prof: &Profile, st: &mut SubscriberState| {
        decide(
            &pol,
            vec![p(rule, 0.5, &["sms"], cat)],
            st,
            prof,
            format!("e-{rule}"),
            "2026-11-23T08:00:00+08:00",
        )
        .remove(0)
    };
    // Refused all marketing: sales and care stop, the contract notice still goes.
    assert_eq!(
        decide("s", Category::Sales, &prof, &mut st)
            .reason
            .as_deref(),
        Some("opt_out")
    );
    assert_eq!(
        decide("c", Category::Care, &prof, &mut st)
            .reason
            .as_deref(),
        Some("opt_out")
    );
    assert_eq!(decide("n", Category::Service, &prof, &mut st).reason, None);
    // Refused service messages by SMS: the notice stops.
    prof.extra
        .insert("service_opt_outs".into(), serde_json::json!(["sms"]));
    assert_eq!(
        decide("n2", Category::Service, &prof, &mut st)
            .reason
            .as_deref(),
        Some("opt_out")
    );
}
