use super::*;

#[test]
fn counts_segments_like_an_smsc() {
    assert_eq!(segments("hello"), ("gsm7", 1));
    assert_eq!(segments(&"a".repeat(160)), ("gsm7", 1));
    assert_eq!(segments(&"a".repeat(161)), ("gsm7", 2));
    assert_eq!(segments("欢迎来到日本"), ("ucs2", 1));
    assert_eq!(segments(&"欢".repeat(71)), ("ucs2", 2));
    assert_eq!(segments(&"欢".repeat(134)), ("ucs2", 2));
    assert_eq!(segments(&"欢".repeat(135)), ("ucs2", 3));
    // Extension characters are GSM 7-bit, two septets each.
    assert_eq!(segments("{50% off} €5"), ("gsm7", 1));
    assert_eq!(segments(&"€".repeat(80)), ("gsm7", 1));
    assert_eq!(segments(&"€".repeat(81)), ("gsm7", 2));
}

#[test]
fn outbox_is_bounded_and_filterable() {
    let o = Outbox::new(2);
    let mk = |id: &str, to: &str| crate::ports::Recommendation {
        id: id.into(),
        msisdn: crate::event::Msisdn::parse(to).unwrap(),
        rule_id: "r".into(),
        offer_code: "O".into(),
        channel: "sms".into(),
        message: "hi".into(),
        score: 0.5,
        trigger_event_id: None,
        campaign_id: None,
        request_id: None,
        decided_at: chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap(),
        expires_at: chrono::DateTime::parse_from_rfc3339("2026-11-24T08:00:00+08:00").unwrap(),
        not_before: None,
        status: crate::ports::Status::Queued,
        reason: None,
        explanation: None,
        service: false,
    };
    for (i, to) in ["8613900000001", "8613900000002", "8613900000001"]
        .iter()
        .enumerate()
    {
        o.send(&mk(&format!("r{i}"), to)).unwrap();
    }
    assert_eq!(o.recent(None, 10).len(), 2);
    let mine = o.recent(Some("8613900000001"), 10);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].recommendation_id, "r2");
    // A page counts every match, not just what it holds.
    let (page, total) = o.page(None, 1, 1);
    assert_eq!((page.len(), total), (1, 2));
    assert_eq!(page[0].recommendation_id, "r1");
}

#[tokio::test]
async fn only_an_smsc_cannot_recognise_a_resend() {
    use crate::channels::Channel;
    let (receipts, _rx) = crate::channels::Receipts::new();
    let mut c = crate::config::SmsConfig::default();
    assert!(build(&c, receipts.clone()).unwrap().idempotent(), "outbox");
    c.mode = "smpp".into();
    c.smpp.host = "127.0.0.1".into();
    c.smpp.system_id = "kairos".into();
    let smpp = build(&c, receipts).unwrap();
    assert!(matches!(smpp, SmsAdapter::Smpp(_)));
    assert!(
        !smpp.idempotent(),
        "an interrupted submit must become unknown, not a resend"
    );
}
