//! The command line as a marketer or operator uses it: replay, rules check, rules test.

use crate::engine_support;

use std::process::Command;

use engine_support::*;

fn kairos() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
    c.current_dir(repo());
    c.env_remove("KAIROS_CONFIG");
    c
}

fn write_events(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("events.ndjson");
    let lines: Vec<String> = three_subscribers().iter().map(|e| e.to_string()).collect();
    std::fs::write(&p, lines.join("\n") + "\n{broken line\n").unwrap();
    p
}

#[test]
fn replay_on_the_standard_pack_offers_to_the_roamer_and_three_missed_calls_only() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());
    let out = dir.path().join("recs.ndjson");
    let run = kairos()
        .args(["replay", "--events"])
        .arg(&events)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let recs: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let proposed: Vec<(&str, &str)> = recs
        .iter()
        .filter(|r| r["status"] == "proposed")
        .map(|r| {
            (
                r["msisdn"].as_str().unwrap(),
                r["offer_code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        proposed,
        vec![
            ("8613900000001", "ROAM-JP-7D"),
            ("8613900000002", "MCR-MONTHLY")
        ],
        "{recs:#?}"
    );
    assert!(recs.iter().all(|r| r["msisdn"] != "8613900000003"));
    // Summary on stderr: counts and the rejected line with its number.
    assert!(stderr.contains("replayed 10 events"), "{stderr}");
    assert!(stderr.contains("1 rejected"), "{stderr}");
    assert!(stderr.contains("line 10: body"), "{stderr}");
    assert!(stderr.contains("roaming-welcome"), "{stderr}");

    // Deterministic: a second run writes the same bytes.
    let out2 = dir.path().join("recs2.ndjson");
    let run = kairos()
        .args(["replay", "--events"])
        .arg(&events)
        .arg("--out")
        .arg(&out2)
        .output()
        .unwrap();
    assert!(run.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
}

#[test]
fn replay_reads_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());
    let profiles = dir.path().join("profiles.ndjson");
    // This roamer opted out of SMS: the offer goes to the portal instead.
    std::fs::write(
        &profiles,
        r#"{"msisdn":"8613900000001","language":"en","opt_outs":["sms"]}"#,
    )
    .unwrap();
    let run = kairos()
        .args(["replay", "--events"])
        .arg(&events)
        .arg("--profiles")
        .arg(&profiles)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    let roam: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["rule_id"] == "roaming-welcome")
        .unwrap();
    assert_eq!(roam["channel"], "portal");
    assert!(
        roam["message"]
            .as_str()
            .unwrap()
            .starts_with("Welcome to Japan"),
        "{roam}"
    );
}

#[test]
fn rules_check_and_test_pass_on_the_standard_pack() {
    let run = kairos()
        .args(["rules", "check", "rules/"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("rules OK"), "{stdout}");
    assert!(!stdout.contains("warning"), "the pack can fire: {stdout}");
    let run = kairos().args(["rules", "test", "rules/"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

#[test]
fn rules_check_reports_file_line_and_problem() {
    let dir = rules_dir(&[(
        "bad.rhai",
        "#{\n    id: \"bad\",\n    name: \"Bad\",\n    kind: \"dynamic\",\n    events: [\"sms\"],\n    channels: [\"sms\"],\n    offer: #{ code: \"X\" },\n    message: \"x\",\n};\nfn condition(event, profile) {\n    sms_today() > 3\n}\n",
    )]);
    let run = kairos()
        .args(["rules", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("bad.rhai:11:5: unknown function sms_today()"),
        "{stderr}"
    );
}

/// A rule that loads but can never fire passes the check with a warning that names the
/// file, the line and what to write instead.
#[test]
fn rules_check_warns_of_a_rule_that_never_fires() {
    let dir = rules_dir(&[(
        "vip.rhai",
        "#{\n    id: \"vip\",\n    name: \"VIP\",\n    kind: \"dynamic\",\n    events: [\"location_update\"],\n    when: #{ roaming: true, \"profile.value_tier\": \"platinium\" },\n    channels: [\"sms\"],\n    offer: #{ code: \"X\" },\n    message: \"x\",\n};\n",
    )]);
    let no_templates = tempfile::tempdir().unwrap();
    let run = kairos()
        .args(["rules", "check"])
        .arg(dir.path())
        .env("KAIROS_CHANNELS__DIR", no_templates.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("1 rules OK"), "{stdout}");
    assert!(
        stdout.contains("warning: ")
            && stdout.contains("vip.rhai:6:51: no customer has value tier \"platinium\"")
            && stdout.contains("did you mean \"platinum\"?"),
        "{stdout}"
    );
}

/// The contact policy beside the rules is checked with them: a mistake names the file, the
/// line and what is wrong, and a good one is summed up.
#[test]
fn rules_check_checks_the_contact_policy_too() {
    let src = std::fs::read_to_string(repo().join("rules/dynamic/roaming-welcome.rhai")).unwrap();
    let policy = |channel: &str| {
        format!("[[cap]]\nmax = 1\nper = \"day\"\n\n[quiet_hours]\nfrom = \"21:00\"\nto = \"08:00\"\nchannels = [\"{channel}\"]\n")
    };
    let dir = rules_dir(&[("r.rhai", src.as_str()), ("policy.toml", &policy("pager"))]);
    let run = kairos()
        .args(["rules", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("policy.toml:8:12: unknown channel \"pager\""),
        "{stderr}"
    );
    std::fs::write(dir.path().join("policy.toml"), policy("sms")).unwrap();
    // No operator templates here: only the rule and its policy are checked.
    let no_templates = tempfile::tempdir().unwrap();
    let run = kairos()
        .args(["rules", "check"])
        .arg(dir.path())
        .env("KAIROS_CHANNELS__DIR", no_templates.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("1 cap(s), quiet hours 21:00-08:00 on sms"),
        "{stdout}"
    );
}

#[test]
fn rules_test_fails_when_a_rule_does_not_do_what_its_test_says() {
    let src = std::fs::read_to_string(repo().join("rules/dynamic/roaming-welcome.rhai")).unwrap();
    let dir = rules_dir(&[(
        "r.rhai",
        &src.replace("expect: [\"ROAM-JP-7D\"],", "expect: [\"ROAM-XX\"],"),
    )]);
    let run = kairos()
        .args(["rules", "test"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("FAIL  roaming-welcome"), "{stdout}");
    assert!(
        stdout.contains("expected offers [\"ROAM-XX\"], got [\"ROAM-JP-7D\"]"),
        "{stdout}"
    );
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(&cfg, "[engine]\nworkerz = 3\n").unwrap();
    let run = kairos()
        .arg("--config")
        .arg(&cfg)
        .args(["rules", "check"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("workerz"));
}

/// Replays `events` with the rules in `rules`; returns the recommendations file and stderr.
/// One core: a breaker counts the failures in the order they happen, which on several
/// cores is the order the slices reach them.
fn replay_with(rules: &std::path::Path, events: &std::path::Path, out: &std::path::Path) -> String {
    let run = kairos()
        .args(["replay", "--workers", "1", "--events"])
        .arg(events)
        .arg("--rules")
        .arg(rules)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_rule_that_fails_on_every_event_is_quarantined_and_the_offers_do_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("roaming.ndjson");
    std::fs::write(&events, roaming_events(2000).join("\n") + "\n").unwrap();
    let pack = pack_with(&[]);
    let hostile = pack_with(&[("grow-array.rhai", GROW_ARRAY_RULE)]);

    let (clean, bad) = (
        dir.path().join("clean.ndjson"),
        dir.path().join("bad.ndjson"),
    );
    let clean_err = replay_with(pack.path(), &events, &clean);
    let bad_err = replay_with(hostile.path(), &events, &bad);

    let clean = std::fs::read_to_string(&clean).unwrap();
    let bad = std::fs::read_to_string(&bad).unwrap();
    assert!(
        clean.lines().count() > 100,
        "the stream yields offers to compare: {clean_err}"
    );
    // The same recommendations, byte for byte: the bad rule never offered, and after its
    // breaker tripped it was not even run.
    assert_eq!(clean, bad);
    assert!(clean_err.contains("0 rule errors"), "{clean_err}");
    assert!(!clean_err.contains("quarantined"), "{clean_err}");
    // Five failures (the default `engine.quarantine_after`), then quarantined for good.
    assert!(bad_err.contains(", 5 rule errors"), "{bad_err}");
    assert!(
        bad_err.contains("quarantined grow-array: condition()"),
        "{bad_err}"
    );
    assert_eq!(bad_err.matches("quarantined grow-array").count(), 1);
}

/// The replay on every core writes exactly what it writes on one: the standard pack and a
/// contact policy with caps, quiet hours, a control group and an arbitration window (whose
/// replaced offers are written twice), over a simulated stream of many subscribers.
#[test]
fn replay_on_several_cores_writes_byte_for_byte_what_one_core_writes() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    for sub in ["dynamic", "static", "touchpoint"] {
        std::fs::create_dir_all(rules.join(sub)).unwrap();
        for f in std::fs::read_dir(repo().join("rules").join(sub)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, rules.join(sub).join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        rules.join("policy.toml"),
        "[[cap]]\nchannels = [\"sms\"]\nmax = 2\nper = \"day\"\n\
         [quiet_hours]\nfrom = \"22:00\"\nto = \"07:00\"\nchannels = [\"sms\"]\n\
         [control]\nholdout = \"10%\"\n\
         [arbitration]\nwindow = \"30m\"\nwindow_channels = [\"sms\"]\n",
    )
    .unwrap();
    let mut sim = kairos::sim::Simulator::new(3_000, 11);
    let mut t = chrono::DateTime::parse_from_rfc3339("2026-11-23T06:00:00+08:00").unwrap();
    let mut lines = String::new();
    for i in 0..60_000 {
        t += chrono::Duration::milliseconds(900);
        let line = sim.next_json(t).to_string();
        // Lines the reader cannot split from their bytes alone (an escape, a second
        // "msisdn"), blank lines, CRLF and rejections: the slices see them in order too.
        match i % 997 {
            1 => lines.push_str(&line.replacen('{', r#"{"note":"a\"b","#, 1)),
            2 => lines.push_str(&line.replacen('{', r#"{"tag":"msisdn","#, 1)),
            3 => lines.push_str("  \n"),
            4 => lines.push_str(&format!("{line}\r")),
            5 => lines.push_str(&line.replacen(r#""msisdn":""#, r#""msisdn":"x"#, 1)),
            6 => lines.push_str(&line[..line.len() / 2]),
            _ => lines.push_str(&line),
        }
        lines.push('\n');
    }
    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, lines).unwrap();
    let run = |workers: &str| {
        let out = dir.path().join(format!("out-{workers}.ndjson"));
        let r = kairos()
            .args(["replay", "--workers", workers, "--events"])
            .arg(&events)
            .arg("--rules")
            .arg(&rules)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
        assert!(r.status.success(), "{stderr}");
        (std::fs::read(&out).unwrap(), stderr)
    };
    let (one, one_log) = run("1");
    let text = String::from_utf8_lossy(&one);
    assert!(text.lines().count() > 1_000, "{one_log}");
    let rejected = (0..60_000).filter(|i| [5, 6].contains(&(i % 997))).count();
    assert!(
        one_log.contains(&format!(" {rejected} rejected")),
        "{one_log}"
    );
    for reason in [
        "arbitration_window",
        "lost_arbitration",
        "control_group",
        "frequency_cap",
    ] {
        assert!(
            text.contains(reason),
            "the stream exercises {reason}: {one_log}"
        );
    }
    for workers in ["2", "3"] {
        let (many, log) = run(workers);
        assert!(
            one == many,
            "{workers} cores differ from one:\n{one_log}\n{log}"
        );
        // The per-rule table is the same too (the first line, with the time, differs).
        let table = |l: &str| l.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
        assert_eq!(table(&one_log), table(&log));
    }
}

/// Enough rules for a progress bar at a terminal; piped (as here, in scripts and CI logs)
/// `rules check` and `rules test` write their lines and nothing else: no bar, no cursor
/// movement, nothing on stderr.
#[test]
fn rules_check_and_test_on_many_rules_write_no_progress_bar_when_piped() {
    let rule = |i: usize| {
        format!(
            "#{{\n    id: \"roam-{i:02}\", name: \"Roaming {i}\", kind: \"dynamic\",\n    events: [\"location_update\"], when: #{{ roaming: true }}, channels: [\"sms\"],\n    offer: #{{ code: \"ROAM-{i:02}\", validity: \"1d\" }},\n    message: \"Welcome to {{country}}\",\n    tests: [#{{ name: \"a roamer gets it\", events: [#{{ type: \"location_update\", ts: \"2026-11-23T08:15:00+08:00\", attrs: #{{ country: \"JP\", roaming: true }} }}], expect: [\"ROAM-{i:02}\"] }}],\n}};\n"
        )
    };
    let files: Vec<(String, String)> = (0..60)
        .map(|i| (format!("roam-{i:02}.rhai"), rule(i)))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    let dir = rules_dir(&refs);
    let no_templates = tempfile::tempdir().unwrap();
    let run = |cmd: &str| {
        let out = kairos()
            .args(["rules", cmd])
            .arg(dir.path())
            .env("KAIROS_CHANNELS__DIR", no_templates.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{stdout}{stderr}");
        assert_eq!(stderr, "", "rules {cmd}: nothing on stderr");
        assert!(
            !stdout.contains('\r') && !stdout.contains('\x1b'),
            "rules {cmd}: no bar drawn: {stdout:?}"
        );
        stdout
    };
    let check = run("check");
    let lines: Vec<&str> = check.lines().collect();
    assert_eq!(lines.len(), 2, "{check}");
    assert!(lines[0].starts_with("contact policy OK in "), "{check}");
    assert_eq!(
        lines[1],
        format!(
            "60 rules OK in {} (60 test cases, 0 state series); 0 message templates OK in {}",
            dir.path().display(),
            no_templates.path().join("templates").display()
        )
    );
    let mut expected: String = (0..60)
        .map(|i| format!("ok    roam-{i:02} :: a roamer gets it\n"))
        .collect();
    expected.push_str("rules: 60 passed, 0 failed\n");
    assert_eq!(run("test"), expected);
}
