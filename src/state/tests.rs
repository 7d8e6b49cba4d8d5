use super::*;
use crate::event::decode;

fn ev(ty: &str, ts: &str, attrs: &str) -> crate::event::Event {
    let json = format!(
        r#"{{"id":"{ty}-{ts}","type":"{ty}","msisdn":"8613900000001","ts":"{ts}","attrs":{attrs}}}"#
    );
    decode(json.as_bytes()).unwrap()
}

fn window(ty: &str, attr: Option<&str>, agg: Agg, span: i64) -> SeriesDef {
    SeriesDef::Window {
        ty: ty.into(),
        attr: attr.map(Into::into),
        agg,
        span_secs: span,
    }
}

fn count(ty: &str, span: i64) -> SeriesDef {
    window(ty, None, Agg::Count, span)
}

fn apply(st: &mut SubscriberState, spec: &StateSpec, e: &crate::event::Event) {
    st.apply_aggregates(spec, e, 0, 0, 3600);
    st.apply_history(spec, e);
}

#[test]
fn sliding_count_includes_current_and_forgets_old() {
    let def = count("sms", 86400);
    let spec = StateSpec::new([def.clone()]);
    let mut st = SubscriberState::default();
    for h in 0..5 {
        let e = ev("sms", &format!("2026-11-23T{:02}:00:00Z", h + 1), "{}");
        apply(&mut st, &spec, &e);
    }
    let now = ev("sms", "2026-11-23T06:00:00Z", "{}").epoch();
    assert_eq!(st.window(&def.clone().into(), now), 5.0);
    // A day and a bit later the window is empty again.
    let later = ev("sms", "2026-11-24T07:30:00Z", "{}").epoch();
    assert_eq!(st.window(&def.clone().into(), later), 0.0);
}

#[test]
fn sums_min_max_distinct() {
    let topups = |attr, agg| window("topup", Some(attr), agg, 30 * 86400);
    let sum = topups("amount_cents", Agg::Sum);
    let max = topups("amount_cents", Agg::Max);
    let min = topups("amount_cents", Agg::Min);
    let distinct = topups("channel", Agg::Distinct);
    let spec = StateSpec::new([sum.clone(), max.clone(), min.clone(), distinct.clone()]);
    let mut st = SubscriberState::default();
    for (d, amt, ch) in [(1, 1000, "app"), (5, 5000, "ussd"), (9, 2000, "app")] {
        let e = ev(
            "topup",
            &format!("2026-11-{d:02}T10:00:00Z"),
            &format!(r#"{{"amount_cents":{amt},"channel":"{ch}"}}"#),
        );
        apply(&mut st, &spec, &e);
    }
    let now = ev("topup", "2026-11-10T00:00:00Z", "{}").epoch();
    assert_eq!(st.window(&sum.clone().into(), now), 8000.0);
    assert_eq!(st.window(&max.clone().into(), now), 5000.0);
    assert_eq!(st.window(&min.clone().into(), now), 1000.0);
    assert_eq!(st.window(&distinct.clone().into(), now), 2.0);
}

#[test]
fn late_events_land_in_their_window() {
    let def = count("call", 3600);
    let spec = StateSpec::new([def.clone()]);
    let mut st = SubscriberState::default();
    apply(&mut st, &spec, &ev("call", "2026-11-23T10:00:00Z", "{}"));
    // Arrives after the 10:00 one but happened at 09:50.
    apply(&mut st, &spec, &ev("call", "2026-11-23T09:50:00Z", "{}"));
    let at_0955 = ev("call", "2026-11-23T09:55:00Z", "{}").epoch();
    assert_eq!(
        st.window(&def.clone().into(), at_0955),
        1.0,
        "only the 09:50 call is before 09:55"
    );
    let at_1000 = ev("call", "2026-11-23T10:00:00Z", "{}").epoch();
    assert_eq!(st.window(&def.clone().into(), at_1000), 2.0);
}

#[test]
fn count_since_resets_on_the_other_type() {
    let def = SeriesDef::CountSince {
        ty: "missed_call".into(),
        reset: "power_off".into(),
    };
    let spec = StateSpec::new([def.clone()]);
    let mut st = SubscriberState::default();
    apply(
        &mut st,
        &spec,
        &ev("missed_call", "2026-11-23T08:00:00Z", "{}"),
    );
    apply(
        &mut st,
        &spec,
        &ev("power_off", "2026-11-23T09:00:00Z", "{}"),
    );
    assert_eq!(st.count_since(&def.clone().into()), 0);
    for m in 1..=3 {
        apply(
            &mut st,
            &spec,
            &ev(
                "missed_call",
                &format!("2026-11-23T09:{:02}:00Z", m * 10),
                "{}",
            ),
        );
    }
    assert_eq!(st.count_since(&def.clone().into()), 3);
}

#[test]
fn last_keeps_previous_value_and_ignores_older() {
    let def = SeriesDef::Last {
        ty: "bill".into(),
        attr: Some("amount_cents".into()),
    };
    let spec = StateSpec::new([def.clone()]);
    let mut st = SubscriberState::default();
    apply(
        &mut st,
        &spec,
        &ev("bill", "2026-10-01T00:00:00Z", r#"{"amount_cents":10000}"#),
    );
    apply(
        &mut st,
        &spec,
        &ev("bill", "2026-11-01T00:00:00Z", r#"{"amount_cents":13500}"#),
    );
    apply(
        &mut st,
        &spec,
        &ev("bill", "2026-09-01T00:00:00Z", r#"{"amount_cents":1}"#),
    );
    let l = st.last(&def.clone().into()).unwrap();
    assert_eq!(l.val, Val::Num(13500.0));
    assert_eq!(l.prev, Val::Num(10000.0));
}

#[test]
fn calendar_rolls_to_previous_period() {
    let def = SeriesDef::Calendar {
        ty: "bill".into(),
        attr: Some("amount_cents".into()),
        unit: Calendar::Month,
    };
    let spec = StateSpec::new([def.clone()]);
    let mut st = SubscriberState::default();
    let e1 = ev("bill", "2026-10-05T00:00:00Z", r#"{"amount_cents":100}"#);
    st.apply_aggregates(&spec, &e1, 0, 10, 3600);
    let e2 = ev("bill", "2026-11-05T00:00:00Z", r#"{"amount_cents":250}"#);
    st.apply_aggregates(&spec, &e2, 0, 11, 3600);
    assert_eq!(st.calendar(&def.clone().into(), 11), 250.0);
    assert_eq!(st.calendar(&def.clone().into(), 10), 100.0);
    assert_eq!(st.calendar(&def.clone().into(), 9), 0.0);
}

#[test]
fn duplicate_ids_are_remembered_for_the_window_not_by_count() {
    let mut st = SubscriberState::default();
    let t0 = 1_790_000_000;
    for i in 0..20 {
        st.remember(&format!("e{i}"), t0 + i);
    }
    assert!(st.seen("e19"));
    assert!(
        st.seen("e0"),
        "every id inside the window is kept, not just the last 8"
    );
    assert!(!st.seen("e20"));
    // An hour later, with an hour of lateness, the ids of the first minutes are forgotten.
    st.forget_ids_before(t0 + 3600);
    assert!(!st.seen("e0"));
    assert!(st.seen_ids.is_empty());
}

#[test]
fn remembered_ids_are_bounded_and_older_events_refused() {
    let mut st = SubscriberState::default();
    let t0 = 1_790_000_000;
    for i in 0..(MAX_SEEN_IDS as i64 + 10) {
        st.remember(&format!("e{i}"), t0 + i);
    }
    assert_eq!(st.seen_ids.len(), MAX_SEEN_IDS);
    assert!(!st.seen("e0"));
    // What was forgotten cannot be told from a duplicate: refused (late), never processed.
    assert!(st.before_seen_floor(t0));
    assert!(!st.before_seen_floor(t0 + MAX_SEEN_IDS as i64 + 9));
}

/// The fields every old encoding begins with; bincode writes a nested struct as its fields
/// inline, so the pinned blobs below are those of the flat forms.
#[derive(serde::Serialize)]
struct OldHead {
    watermark: i64,
    windows: Vec<()>,
    calendars: Vec<()>,
    lasts: Vec<()>,
    since: Vec<()>,
    cooldowns: Vec<(u32, i64)>,
}

/// Watermark 1_790_000_000, no series, one cooldown.
fn old_head() -> OldHead {
    OldHead {
        watermark: 1_790_000_000,
        windows: vec![],
        calendars: vec![],
        lasts: vec![],
        since: vec![],
        cooldowns: vec![(7, 1_790_086_400)],
    }
}

/// Reads `old` written after the encoding mark and `version`, whose bytes are pinned as
/// `blob` (a change to that layout's reader is noticed); every old form kept its cooldown.
fn load_marked(version: u8, old: &impl serde::Serialize, blob: &str) -> SubscriberState {
    let mut bytes = vec![0xFF, version];
    bytes.extend(bincode::serde::encode_to_vec(old, bincode::config::standard()).unwrap());
    assert_eq!(hex::encode(&bytes), blob);
    let st = SubscriberState::from_bytes(&bytes).unwrap();
    assert_eq!(st.cooldowns.as_slice(), &[(7, 1_790_086_400)]);
    st
}

/// Saved again, a state loaded from an old form is in the current encoding and reads back
/// the same.
fn saves_in_the_current_encoding(st: &SubscriberState) {
    let again = st.to_bytes();
    assert_eq!(&again[..2], &[0xFF, 4]);
    assert_eq!(&SubscriberState::from_bytes(&again).unwrap(), st);
}

#[test]
fn state_of_the_first_encoding_still_loads() {
    // Bytes written by the version before the encoding mark: watermark 1_790_000_000,
    // one cooldown, two recent ids, 1 sent on day 20_700.
    #[derive(serde::Serialize)]
    struct V1 {
        head: OldHead,
        recent_ids: Vec<u64>,
        sent_day: i32,
        sent_today: u16,
        last_complaint: i64,
    }
    let old = V1 {
        head: old_head(),
        recent_ids: vec![crate::state::id_hash("a"), crate::state::id_hash("b")],
        sent_day: 20_700,
        sent_today: 1,
        last_complaint: 0,
    };
    let bytes = bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap();
    // Pinned, so a change to the old layout's reader is noticed.
    assert_eq!(hex::encode(&bytes), OLD_BLOB);
    let st = SubscriberState::from_bytes(&bytes).unwrap();
    assert_eq!(st.watermark, 1_790_000_000);
    assert_eq!(st.cooldowns.as_slice(), &[(7, 1_790_086_400)]);
    assert!(st.seen("a") && st.seen("b") && !st.seen("c"));
    // The day's one message carries over as one contact of unknown channel.
    assert_eq!(
        st.contacts.as_slice(),
        &[crate::state::Contact::new(1_790_000_000, 0)]
    );
    // Saved again, it is the new encoding, and reads back the same.
    let again = st.to_bytes();
    assert_eq!(again[0], 0xFF);
    assert_eq!(SubscriberState::from_bytes(&again).unwrap(), st);
}

const OLD_BLOB: &str =
    "fc007762d5000000000107fc001a65d502fd8cec01864cdc63affda5f101864cdf63affbb8a10100";

#[test]
fn state_of_the_second_encoding_still_loads() {
    // Version 2 counted the day's marketing messages instead of logging contacts.
    #[derive(serde::Serialize)]
    struct V2 {
        head: OldHead,
        seen_ids: Vec<(u32, u32)>,
        seen_floor: u32,
        sent_day: i32,
        sent_today: u16,
        last_complaint: i64,
    }
    let old = V2 {
        head: old_head(),
        seen_ids: vec![(29_833_333, 42)],
        seen_floor: 3,
        sent_day: 20_700,
        sent_today: 2,
        last_complaint: 5,
    };
    let st = load_marked(2, &old, V2_BLOB);
    assert_eq!(st.seen_ids.as_slice(), &[(29_833_333, 42)]);
    assert_eq!((st.seen_floor, st.last_complaint), (3, 5));
    assert_eq!(st.contacts.len(), 2);
    assert!(st
        .contacts
        .iter()
        .all(|c| c.channel == 0 && c.at() <= st.watermark));
    saves_in_the_current_encoding(&st);
}

const V2_BLOB: &str = "ff02fc007762d5000000000107fc001a65d501fc7538c7012a03fbb8a1020a";

#[test]
fn state_round_trips_and_stays_small() {
    let def = count("sms", 86400);
    let spec = StateSpec::new([
        def.clone(),
        SeriesDef::Last {
            ty: "sms".into(),
            attr: Some("peer".into()),
        },
    ]);
    let mut st = SubscriberState::default();
    for h in 0..10 {
        apply(
            &mut st,
            &spec,
            &ev(
                "sms",
                &format!("2026-11-23T{:02}:00:00Z", h),
                r#"{"peer":"8613900000002"}"#,
            ),
        );
    }
    let bytes = st.to_bytes();
    assert_eq!(SubscriberState::from_bytes(&bytes).unwrap(), st);
    assert!(st.approx_bytes() < 1024, "{}", st.approx_bytes());
    assert!(SubscriberState::from_bytes(b"\xff\xff garbage").is_err());
}

#[test]
fn buckets_stay_bounded_over_a_long_stream() {
    let def = count("data_session", 3600);
    let spec = StateSpec::new([def.clone()]);
    let mut st = SubscriberState::default();
    let start = ev("data_session", "2026-11-01T00:00:00Z", "{}");
    for i in 0..10_000i64 {
        let mut e = start.clone();
        e.ts += chrono::Duration::seconds(i * 37);
        e.id = format!("d{i}").into();
        apply(&mut st, &spec, &e);
    }
    // 1 h window + 1 h lateness in 150 s buckets: ~49 buckets at most.
    assert!(
        st.windows[0].buckets.len() <= 50,
        "{}",
        st.windows[0].buckets.len()
    );
}

#[test]
fn filtered_series_count_only_matching_events() {
    let intl = count("call[international=true]", 7 * 86400);
    let all = count("call", 7 * 86400);
    let spec = StateSpec::new([intl.clone(), all.clone()]);
    let mut st = SubscriberState::default();
    for (i, international) in [true, false, true, false, false].iter().enumerate() {
        let e = ev(
            "call",
            &format!("2026-11-2{}T10:00:00Z", i + 1),
            &format!(r#"{{"international":{international}}}"#),
        );
        apply(&mut st, &spec, &e);
    }
    let now = ev("call", "2026-11-26T12:00:00Z", "{}").epoch();
    assert_eq!(st.window(&intl.clone().into(), now), 2.0);
    assert_eq!(st.window(&all.clone().into(), now), 5.0);
}

#[test]
fn thin_vectors_encode_like_vectors_so_saved_state_still_loads() {
    // State saved before the lists became thin vectors must decode unchanged.
    let cfg = bincode::config::standard();
    let items = vec![(7u32, 1_700_000_000i64), (9, -1)];
    let thin: thin_vec::ThinVec<(u32, i64)> = items.iter().copied().collect();
    assert_eq!(
        bincode::serde::encode_to_vec(&items, cfg).unwrap(),
        bincode::serde::encode_to_vec(&thin, cfg).unwrap()
    );
}

#[test]
fn state_of_the_third_encoding_still_loads() {
    // Version 3 had no offers pending an arbitration window.
    #[derive(serde::Serialize)]
    struct V3 {
        head: OldHead,
        seen_ids: Vec<(u32, u32)>,
        seen_floor: u32,
        contacts: Vec<(u32, u32)>,
        outcomes: Vec<(u32, u32, u32)>,
        last_complaint: i64,
    }
    let old = V3 {
        head: old_head(),
        seen_ids: vec![(29_833_333, 42)],
        seen_floor: 3,
        contacts: vec![(29_833_300, 11)],
        // Declined (the enum's second variant).
        outcomes: vec![(29_833_310, 99, 1)],
        last_complaint: 5,
    };
    let st = load_marked(3, &old, V3_BLOB);
    assert_eq!(
        st.contacts.as_slice(),
        &[Contact {
            minute: 29_833_300,
            channel: 11
        }]
    );
    assert_eq!(st.outcomes[0].kind, OutcomeKind::Declined);
    assert!(st.pending.is_empty());
    saves_in_the_current_encoding(&st);
}

const V3_BLOB: &str =
    "ff03fc007762d5000000000107fc001a65d501fc7538c7012a0301fc5438c7010b01fc5e38c70163010a";
