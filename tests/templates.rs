//! Message templates in `channels/templates`: checked with file and line, and what the
//! subscriber reads, in their language.

use std::path::Path;
use std::process::Command;

use crate::crash::kairos;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("templates").join(name), text).unwrap();
}

fn check(channels: &Path) -> (bool, String, String) {
    let out = kairos()
        .env("KAIROS_CHANNELS__DIR", channels)
        .args(["rules", "check"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_templates_pass_the_check() {
    let (ok, out, err) = check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("channels"));
    assert!(ok, "{err}");
    assert!(out.contains("message templates OK"), "{out}");
}

#[test]
fn unknown_offers_variables_and_languages_are_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "offers.toml",
        r#"# a typo in the offer, one in a variable, one in a language tag
[[template]]
offer = "ROAM-{contry}-7D"
text.en = "x"

[[template]]
offer = "PLAN-UP-BIGGER"
text.en = "Your bill: {amount} yuan, {growht}%"
text.ZH = "您"
"#,
    );
    write(dir.path(), "broken.toml", "[[template]]\noffer = \n");
    let (ok, _, err) = check(dir.path());
    assert!(!ok, "the check fails");
    let t = dir.path().join("templates");
    let lines: Vec<&str> = err.lines().collect();
    let at = |file: &str, line: u32| format!("{}:{line}:", t.join(file).display());
    assert!(
        lines[0].starts_with(&at("broken.toml", 2)),
        "TOML syntax, with its line: {err}"
    );
    assert!(lines[1].starts_with(&at("offers.toml", 3)), "{err}");
    assert!(
        lines[1].ends_with("did you mean `ROAM-{country}-7D`?"),
        "{err}"
    );
    assert!(lines[2].starts_with(&at("offers.toml", 8)), "{err}");
    assert!(lines[2].contains("unknown variable `{growht}`"), "{err}");
    assert!(lines[2].ends_with("did you mean `{growth}`?"), "{err}");
    assert!(lines[3].starts_with(&at("offers.toml", 9)), "{err}");
    assert!(lines[3].contains("`ZH` is not a language tag"), "{err}");
    assert!(lines[4].starts_with("4 problem(s)"), "{err}");
}

#[test]
fn a_template_replaces_the_rules_text_in_the_subscribers_language() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "roaming.toml",
        r#"[[template]]
offer = "ROAM-{country}-7D"
text.en = "Hello from the template, enjoy {country_name} ({msisdn})"
text.zh-CN = "模板：欢迎来到{country_name}"
"#,
    );
    let events = dir.path().join("events.ndjson");
    let ev = |id: &str, msisdn: &str| {
        format!(
            r#"{{"id":"{id}","type":"location_update","msisdn":"{msisdn}","ts":"2026-11-23T08:15:00+08:00","attrs":{{"country":"JP","roaming":true}}}}"#
        )
    };
    std::fs::write(
        &events,
        [
            ev("e1", "8613900003001"),
            ev("e2", "8613900003002"),
            ev("e3", "8613900003003"),
        ]
        .join("\n"),
    )
    .unwrap();
    let profiles = dir.path().join("profiles.ndjson");
    std::fs::write(
        &profiles,
        r#"{"msisdn":"8613900003001","language":"zh"}
{"msisdn":"8613900003002","language":"en"}
{"msisdn":"8613900003003","language":"fr"}
"#,
    )
    .unwrap();
    let out = dir.path().join("recs.ndjson");
    let st = kairos()
        .env("KAIROS_CHANNELS__DIR", dir.path())
        .args(["replay", "--events"])
        .arg(&events)
        .arg("--profiles")
        .arg(&profiles)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let recs: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = |m: &str| {
        recs.iter()
            .find(|r| r["msisdn"] == m && r["offer_code"] == "ROAM-JP-7D")
            .unwrap_or_else(|| panic!("an offer for {m}: {recs:?}"))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(text("8613900003001"), "模板：欢迎来到日本");
    assert_eq!(
        text("8613900003002"),
        "Hello from the template, enjoy Japan (8613900003002)"
    );
    // No French text: English.
    assert!(text("8613900003003").starts_with("Hello from the template"));
    // Without the template the rule's own text is used.
    let plain = tempfile::tempdir().unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_kairos"))
        .env(
            "KAIROS_ENGINE__RULES_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"),
        )
        .env("KAIROS_CHANNELS__DIR", plain.path())
        .env("KAIROS_LOG", "warn")
        .args(["replay", "--events"])
        .arg(&events)
        .arg("--profiles")
        .arg(&profiles)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let again = std::fs::read_to_string(&out).unwrap();
    assert!(again.contains("欢迎来到日本！7天1GB"), "{again}");
    assert!(!again.contains("模板"), "{again}");
}
