use super::*;

fn ok(json: &str) -> Event {
    decode(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn err(json: &str) -> DecodeError {
    decode(json.as_bytes()).expect_err(json)
}

#[test]
fn decodes_the_contract_example() {
    let e = ok(
        r#"{"id":"e-20261123-000001","type":"location_update","msisdn":"8613900000001",
        "ts":"2026-11-23T08:15:00+08:00","attrs":{"country":"JP","mcc":"440","roaming":true}}"#,
    );
    assert_eq!(e.kind, EventType::Known(Known::LocationUpdate));
    assert_eq!(e.msisdn.to_string(), "8613900000001");
    assert_eq!(e.attr("country"), Some(&AttrValue::Str("JP".into())));
    assert_eq!(e.attr("roaming"), Some(&AttrValue::Bool(true)));
    assert_eq!(e.ts.offset().local_minus_utc(), 8 * 3600);
}

#[test]
fn every_contract_type_decodes_with_its_attrs() {
    for k in Known::ALL {
        let attrs: serde_json::Map<String, serde_json::Value> = k
            .attrs()
            .iter()
            .map(|(name, kind)| {
                let v = match kind {
                    AttrKind::Str => serde_json::json!("x"),
                    AttrKind::Int => serde_json::json!(7),
                    AttrKind::Num => serde_json::json!(80.5),
                    AttrKind::Bool => serde_json::json!(true),
                    AttrKind::Any => serde_json::json!("gold"),
                };
                (name.to_string(), v)
            })
            .collect();
        let json = serde_json::json!({"id":"e1","type":k.as_str(),"msisdn":"8613900000001",
            "ts":"2026-11-23T08:15:00Z","attrs":attrs});
        let e = decode_value(&json).unwrap_or_else(|e| panic!("{}: {e}", k.as_str()));
        assert_eq!(e.kind.as_str(), k.as_str());
        assert_eq!(e.attrs.0.len(), k.attrs().len());
    }
}

#[test]
fn attrs_may_be_absent_empty_or_null() {
    for a in ["", r#","attrs":{}"#, r#","attrs":null"#] {
        let e = ok(&format!(
            r#"{{"id":"e1","type":"power_on","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"{a}}}"#
        ));
        assert!(e.attrs.is_empty());
    }
}

#[test]
fn unknown_attributes_are_kept() {
    let e = ok(
        r#"{"id":"e1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z",
        "attrs":{"duration_s":30,"vendor_flag":"x","nested":{"a":[1,2]}}}"#,
    );
    assert_eq!(e.attr("vendor_flag"), Some(&AttrValue::Str("x".into())));
    assert!(matches!(e.attr("nested"), Some(AttrValue::Json(_))));
    let back: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
    assert_eq!(back["attrs"]["nested"]["a"][1], 2);
}

#[test]
fn custom_snake_case_types_decode() {
    let e = ok(
        r#"{"id":"e1","type":"app_install","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
    );
    assert_eq!(e.kind, EventType::Custom("app_install".into()));
}

#[test]
fn escaped_strings_decode() {
    let e = ok(
        r#"{"id":"e\u0031","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"peer":"a\"b"}}"#,
    );
    assert_eq!(e.id, "e1");
    assert_eq!(e.attr("peer").unwrap().as_str(), Some("a\"b"));
}

#[test]
fn rejections_name_the_field() {
    let cases = [
        ("not json", "body"),
        ("[1,2]", "body"),
        (
            r#"{"type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
            "id",
        ),
        (
            r#"{"id":"","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
            "id",
        ),
        (
            r#"{"id":"e1","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
            "type",
        ),
        (
            r#"{"id":"e1","type":"Bad-Type","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
            "type",
        ),
        (
            r#"{"id":"e1","type":"sms","msisdn":8613900000001,"ts":"2026-11-23T08:15:00Z"}"#,
            "msisdn",
        ),
        (
            r#"{"id":"e1","type":"sms","msisdn":"86139abc","ts":"2026-11-23T08:15:00Z"}"#,
            "msisdn",
        ),
        (
            r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23 08:15:00"}"#,
            "ts",
        ),
        (
            r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00"}"#,
            "ts",
        ),
        (
            r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":[1]}"#,
            "attrs",
        ),
        (
            r#"{"id":"e1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"duration_s":"long"}}"#,
            "attrs.duration_s",
        ),
        (
            r#"{"id":"e1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"roaming":"yes"}}"#,
            "attrs.roaming",
        ),
    ];
    for (json, field) in cases {
        assert_eq!(err(json).field, field, "{json}");
    }
}

#[test]
fn long_ids_are_rejected() {
    let id = "x".repeat(129);
    let e = err(&format!(
        r#"{{"id":"{id}","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}}"#
    ));
    assert_eq!(e.field, "id");
}

#[test]
fn text_and_bytes_decode_alike() {
    let json = r#"{"id":"e1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"duration_s":30}}"#;
    assert_eq!(decode_str(json), decode(json.as_bytes()));
    assert_eq!(decode_str("{oops").unwrap_err().field, "body");
    assert_eq!(
        decode_str(r#"{"id":"e1","type":"call","msisdn":"1","ts":"x"}"#)
            .unwrap_err()
            .field,
        "msisdn"
    );
}

#[test]
fn duplicate_attribute_keys_last_one_wins() {
    let e = ok(
        r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"peer":"a","peer":"b"}}"#,
    );
    assert_eq!(e.attr("peer").and_then(|v| v.as_str()), Some("b"));
}

#[test]
fn contract_attribute_names_are_shared_and_others_kept_as_sent() {
    assert_eq!(super::contract_attr_name("duration_s"), Some("duration_s"));
    assert_eq!(super::contract_attr_name("roaming"), Some("roaming"));
    assert_eq!(super::contract_attr_name("loyalty_tier"), None);
    let e = decode(
        br#"{"id":"a","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:00:00+08:00","attrs":{"duration_s":5,"loyalty_tier":"gold"}}"#,
    )
    .unwrap();
    assert_eq!(e.attr("duration_s"), Some(&AttrValue::Int(5)));
    assert_eq!(e.attr("loyalty_tier"), Some(&AttrValue::Str("gold".into())));
}

#[test]
fn a_repeated_key_cannot_hide_a_value_of_the_wrong_kind() {
    let e = err(
        r#"{"id":"e1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"duration_s":"long","duration_s":30}}"#,
    );
    assert_eq!(e.field, "attrs.duration_s");
    // An attribute another type lists, sent with a type that does not, is kept as it is.
    let e = ok(
        r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"duration_s":"long"}}"#,
    );
    assert_eq!(e.attr("duration_s").and_then(|v| v.as_str()), Some("long"));
}

#[test]
fn each_type_knows_the_kind_of_its_own_attributes() {
    for k in Known::ALL {
        for (name, kind) in k.attrs() {
            assert_eq!(k.attr_kind(name), Some(*kind), "{}.{name}", k.as_str());
        }
        assert_eq!(k.attr_kind("not_in_the_contract"), None);
    }
}

#[test]
fn attributes_after_a_nested_value_are_read() {
    let e = ok(
        r#"{"id":"e1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z",
        "attrs":{"a":{"b":[1,2,{"c":3}]},"duration_s":30,"x":[[1],[2]],"peer":"p"},"after":{"k":1}}"#,
    );
    assert_eq!(e.attr("duration_s"), Some(&AttrValue::Int(30)));
    assert_eq!(e.attr("peer").and_then(|v| v.as_str()), Some("p"));
    assert_eq!(e.attrs.0.len(), 4);
    let Some(AttrValue::Json(a)) = e.attr("a") else {
        panic!("nested kept as JSON")
    };
    assert_eq!(a["b"][2]["c"], 3);
}

#[test]
fn invalid_utf8_is_rejected_as_the_body() {
    let mut bytes = br#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{"peer":"XX"}}"#.to_vec();
    let at = bytes.iter().position(|b| *b == b'X').unwrap();
    bytes[at] = 0xff;
    assert_eq!(decode(&bytes).unwrap_err().field, "body");
}

/// The scan path must accept and reject exactly what serde_json does, with the same result.
fn same_as_serde(bytes: &[u8]) {
    let fast = decode(bytes);
    let slow = super::decode::decode_with_serde(bytes);
    let text = String::from_utf8_lossy(bytes);
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
        (Err(a), Err(b)) => assert_eq!(a.field, b.field, "{text}"),
        _ => panic!("{text}: fast {fast:?}, serde {slow:?}"),
    }
}

#[test]
fn the_scan_path_agrees_with_serde_json() {
    let env = r#""id":"e1","type":"call","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z""#;
    for attrs in [
        r#"{"nested":{"a":[1,{"b":null}],"c":"d"},"duration_s":30,"peer":"x"}"#,
        r#"{"big":18446744073709551615,"i64max":9223372036854775807,"neg":-9223372036854775808}"#,
        r#"{"below":-9223372036854775809,"over":18446744073709551616}"#,
        r#"{"z":-0,"zf":-0.0,"f":1.5e3,"e":2E-2,"lead":01}"#,
        r#"{"huge":1e400}"#,
        r#"{"s":"\u4e2d\u6587 \"q\" \\ \n","plain":"中文","e":""}"#,
        r#"{"peer":"a","peer":"b","duration_s":"x"}"#,
        r#"{"duration_s":1.5}"#,
        r#"{ "answered" : true , "roaming":false,"x":null }"#,
        r#"{"t":tru}"#,
        r#"{"n":-}"#,
        r#"{"n":12a}"#,
        "null",
        "{}",
        "[]",
        r#""text""#,
        "7",
    ] {
        same_as_serde(format!("{{{env},\"attrs\":{attrs}}}").as_bytes());
        same_as_serde(format!("{{\"extra\":{attrs},{env}}}").as_bytes());
        same_as_serde(format!(" {{ \"attrs\" : {attrs} , {env} }} \n").as_bytes());
    }
    for json in [
        "",
        " ",
        "{}",
        "{\"id\":\"e1\"}",
        r#"{"id":1,"type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
        r#"{"id":"a","id":"b","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
        r#"{"id":1,"id":"b","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
        r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"} trailing"#,
        r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z",}"#,
        r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}}"#,
        r#"{"id":"e\ud800","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#,
        "{\"id\":\"e\u{1}\",\"type\":\"sms\",\"msisdn\":\"8613900000001\",\"ts\":\"2026-11-23T08:15:00Z\"}",
    ] {
        same_as_serde(json.as_bytes());
    }
}

#[test]
fn the_scan_path_agrees_with_serde_json_on_traffic_and_mutations() {
    use rand::SeedableRng;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    let mut sim = crate::sim::Simulator::new(1000, 3);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
    const ALPHABET: &[u8] = b"{}[]\":,\\ -+.0123456789eEtrufalsn\x01\xff";
    let mut scanned = 0;
    for _ in 0..3000 {
        let line = sim.next_json(t0).to_string();
        scanned += usize::from(super::scan::raw(&line).is_some());
        same_as_serde(line.as_bytes());
        for _ in 0..3 {
            let b = mutate(&mut rng, line.as_bytes(), ALPHABET, 1..4);
            same_as_serde(&b);
        }
    }
    // Otherwise this would only be testing serde_json against itself.
    assert!(
        scanned > 2900,
        "only {scanned} of 3000 simulated events took the scan path"
    );
}

/// `base` with a few random edits (replace, insert or remove a byte from `alphabet`): the
/// inputs the fast decoders are held to their reference on.
pub(super) fn mutate(
    rng: &mut rand::rngs::SmallRng,
    base: &[u8],
    alphabet: &[u8],
    edits: std::ops::Range<usize>,
) -> Vec<u8> {
    use rand::Rng;
    let mut b = base.to_vec();
    for _ in 0..rng.random_range(edits) {
        let at = rng.random_range(0..b.len());
        let c = alphabet[rng.random_range(0..alphabet.len())];
        match rng.random_range(0..3) {
            0 => b[at] = c,
            1 => b.insert(at, c),
            _ => {
                b.remove(at);
            }
        }
    }
    b
}

/// What `peek::msisdn` answers is the decoded msisdn, on traffic and on lines mutated
/// toward the cases it must turn away (escapes, repeated keys, nesting).
#[test]
fn the_msisdn_peek_agrees_with_the_decode() {
    use rand::SeedableRng;
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    let mut sim = crate::sim::Simulator::new(1000, 5);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(13);
    const ALPHABET: &[u8] = b"{}\":,\\ 0123456789msidn\xff";
    let agree = |b: &[u8]| {
        if let (Some(m), Ok(e)) = (super::peek::msisdn(b), decode(b)) {
            assert_eq!(m, e.msisdn, "{}", String::from_utf8_lossy(b));
        }
    };
    let mut peeked = 0;
    for _ in 0..3000 {
        let line = sim.next_json(t0).to_string();
        let m = super::peek::msisdn(line.as_bytes());
        peeked += usize::from(m.is_some());
        agree(line.as_bytes());
        for _ in 0..3 {
            agree(&mutate(&mut rng, line.as_bytes(), ALPHABET, 1..4));
        }
    }
    assert_eq!(peeked, 3000, "every simulated event is peeked");
    let env = r#""id":"e1","type":"sms","ts":"2026-11-23T08:15:00Z""#;
    for (json, want) in [
        (
            format!(r#"{{{env},"msisdn":"8613900000001"}}"#),
            Some("8613900000001"),
        ),
        (
            format!(r#"{{{env}, "msisdn" : "8613900000001" }}"#),
            Some("8613900000001"),
        ),
        // The real key escaped and a lookalike in an attribute: not sure, so no answer.
        (
            format!(
                r#"{{{env},"msi\u0073dn":"8613900000001","attrs":{{"msisdn":"8613900000002"}}}}"#
            ),
            None,
        ),
        (
            format!(r#"{{{env},"attrs":{{"msisdn":"8613900000002"}},"msisdn":"8613900000001"}}"#),
            None,
        ),
        (format!(r#"{{{env},"msisdn":8613900000001}}"#), None),
        (format!(r#"{{{env},"msisdn":"86139x"}}"#), None),
    ] {
        let got = super::peek::msisdn(json.as_bytes()).map(|m| m.to_string());
        assert_eq!(got.as_deref(), want, "{json}");
        agree(json.as_bytes());
    }
}
