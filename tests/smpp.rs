//! SMS over SMPP v3.4 against an SMSC nobody here wrote: `tests/peers/smsc.js`, on the npm
//! `smpp` package, started per test on a free port. Events go in over HTTP, a rule decides an
//! SMS, the deliverer submits it, the SMSC records what it got and sends receipts back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{on_both_urls, Backend, TestApp};
use kairos::config::{Config, SmppConfig};

/// Says the event's `text` by SMS; one offer per event (the code carries the event's tag).
const SAY_RULE: &str = r#"
#{
    id: "smpp-say",
    name: "Says the event's text by SMS",
    kind: "dynamic",
    events: ["promo_ping"],
    custom_events: ["promo_ping"],
    channels: ["sms"],
    offer: #{ code: "SAY-{tag}", validity: "1d" },
    message: "{text}",
};
"#;

const SYSTEM_ID: &str = "kairos";
const PASSWORD: &str = "secret";

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The test SMSC, a node process; killed when dropped.
struct Smsc {
    port: u16,
    record: PathBuf,
    args: Vec<String>,
    child: Mutex<Option<tokio::process::Child>>,
    _dir: tempfile::TempDir,
}

impl Smsc {
    async fn start(args: &[&str]) -> Smsc {
        assert!(
            peers().join("node_modules/smpp").is_dir(),
            "tests/peers/node_modules is missing: run scripts/services.sh (npm ci in tests/peers)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let smsc = Smsc {
            port,
            record: dir.path().join("smsc.jsonl"),
            args: args.iter().map(|s| s.to_string()).collect(),
            child: Mutex::new(None),
            _dir: dir,
        };
        smsc.up().await;
        smsc
    }

    /// Starts the process (again, on the same port and record) and waits until it listens.
    async fn up(&self) {
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(peers().join("smsc.js"))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--record")
            .arg(&self.record)
            .args(&self.args)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("node is required for the SMPP tests: {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the SMSC listens within 10s")
            .unwrap();
        assert_eq!(
            first.as_deref(),
            Some(format!("listening {}", self.port).as_str())
        );
        *self.child.lock().unwrap() = Some(child);
    }

    /// Kills the process at once (no unbind: an outage).
    async fn kill(&self) {
        let child = self.child.lock().unwrap().take();
        if let Some(mut c) = child {
            c.kill().await.unwrap();
        }
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn of_type(&self, ty: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["type"] == ty)
            .collect()
    }

    /// Submits to `dest`, in order, whatever the SMSC answered.
    fn submits_to(&self, dest: &str) -> Vec<Value> {
        self.of_type("submit_sm")
            .into_iter()
            .filter(|l| l["destination"] == dest)
            .collect()
    }

    /// Submits to `dest` the SMSC took.
    fn accepted_to(&self, dest: &str) -> Vec<Value> {
        self.submits_to(dest)
            .into_iter()
            .filter(|l| l["status"] == 0)
            .collect()
    }

    async fn wait_for(&self, what: &str, ok: impl Fn(&[Value]) -> bool) {
        for _ in 0..200 {
            if ok(&self.lines()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("SMSC: {what} within 10s; record: {:#?}", self.lines());
    }

    /// Waits for `n` accepted binds in all.
    async fn wait_bound(&self, n: usize) {
        self.wait_for(&format!("{n} bind(s)"), |ls| {
            ls.iter()
                .filter(|l| l["type"] == "bind" && l["accepted"] == true)
                .count()
                >= n
        })
        .await;
    }
}

fn smpp_config(c: &mut Config, port: u16, rules: &Path) {
    c.engine.rules_dir = rules.to_path_buf();
    // The numbers texted here have no CRM record; decide for them anyway.
    c.engine.unknown_subscribers = "market".into();
    c.channels.enabled = vec!["sms".into()];
    c.channels.outbox_sweep_secs = 1;
    c.channels.sms.mode = "smpp".into();
    c.channels.sms.sender = "10086".into();
    c.channels.sms.smpp = SmppConfig {
        host: "127.0.0.1".into(),
        port,
        system_id: SYSTEM_ID.into(),
        password: PASSWORD.into(),
        submit_timeout_secs: 2,
        reconnect_secs: 1,
        ..SmppConfig::default()
    };
}

fn rules() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("say.rhai"), SAY_RULE).unwrap();
    d
}

/// Runs `body` on SQLite and PostgreSQL, each with a fresh SMSC started with `args` and a
/// Kairos bound to it.
async fn with_smsc(
    args: &[&str],
    tweak: impl Fn(&mut Config),
    body: impl AsyncFn(&TestApp, &Smsc),
) {
    on_both_urls(async |backend: Backend, url: String| {
        let smsc = Smsc::start(args).await;
        let rules = rules();
        let t = TestApp::start_config(backend, url, |c| {
            smpp_config(c, smsc.port, rules.path());
            tweak(c);
        })
        .await;
        smsc.wait_bound(1).await;
        body(&t, &smsc).await;
        t.stop().await;
    })
    .await;
}

/// Posts one `promo_ping` per `(msisdn, text)` and waits until they are decided.
async fn ping(t: &TestApp, msgs: &[(&str, &str)]) {
    let now = chrono::Utc::now().to_rfc3339();
    let events: Vec<Value> = msgs
        .iter()
        .map(|(m, text)| {
            json!({
                "id": format!("ev-{}", uuid::Uuid::new_v4().simple()),
                "type": "promo_ping",
                "msisdn": m,
                "ts": now,
                "attrs": {"text": text, "tag": m},
            })
        })
        .collect();
    let r = t
        .post(t.admin(), "/api/v1/events?wait=true", json!(events))
        .await
        .expect(200);
    assert_eq!(r["accepted"], msgs.len(), "{r}");
}

/// The one offer made to `msisdn`.
async fn offer_of(t: &TestApp, msisdn: &str) -> Value {
    let r = t
        .get(
            t.admin(),
            &format!("/api/v1/recommendations?msisdn={msisdn}"),
        )
        .await
        .expect(200);
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one offer for {msisdn}: {r:#}");
    items[0].clone()
}

/// Waits until the offer to `msisdn` has `status`; returns it.
async fn wait_status(t: &TestApp, msisdn: &str, status: &str, within: Duration) -> Value {
    let until = tokio::time::Instant::now() + within;
    loop {
        let o = offer_of(t, msisdn).await;
        if o["status"] == status {
            return o;
        }
        assert!(
            o["status"] != "failed",
            "offer to {msisdn} failed, waiting for {status}: {o:#}"
        );
        if tokio::time::Instant::now() > until {
            panic!("offer to {msisdn} is not {status} within {within:?}: {o:#}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn provider_id(t: &TestApp, rec_id: &str) -> Option<String> {
    let (p,): (Option<String>,) =
        sqlx::query_as("SELECT provider_id FROM recommendations WHERE id = $1")
            .bind(rec_id)
            .fetch_one(&t.app.state.db.pool)
            .await
            .unwrap();
    p
}

#[tokio::test]
async fn an_event_becomes_an_sms_the_smsc_takes_and_its_receipt_decides() {
    let short = "8613900005001";
    let chinese = "8613900005002";
    let long = "8613900005003";
    let undeliv = "8613900005004";
    let undeliv_arg = format!("--undeliv={undeliv}");
    // Receipts right behind each submit_sm_resp: they must still find their offers.
    with_smsc(
        &[&undeliv_arg, "--dlr-delay-ms=0"],
        |_| {},
        async |t, smsc| {
            let zh = "您的余额为3.20元。回复Y即可预支10元话费。";
            // 171 septets: two parts; '€' and '{' '}' come from the extension table.
            let long_text = format!(
                "{{Top-up}} 50€ today: {} @ 5% off.",
                "Enjoy 20 GB of data for the next seven days. ".repeat(3)
            );
            assert_eq!(kairos::channels::sms::segments(&long_text), ("gsm7", 2));
            ping(
                t,
                &[
                    (short, "Hello! Reply YES for 1 GB."),
                    (chinese, zh),
                    (long, &long_text),
                    (undeliv, "Never arrives"),
                ],
            )
            .await;
            for m in [short, chinese, long] {
                let o = wait_status(t, m, "delivered", Duration::from_secs(10)).await;
                assert!(o["reason"].is_null(), "{o:#}");
            }
            let o = wait_status(t, undeliv, "failed", Duration::from_secs(10)).await;
            assert_eq!(o["reason"], "undelivered");

            // The SMSC's view: one bind as a v3.4 transceiver with our credentials.
            let binds = smsc.of_type("bind");
            assert_eq!(binds.len(), 1, "{binds:#?}");
            assert_eq!(binds[0]["command"], "bind_transceiver");
            assert_eq!(binds[0]["system_id"], SYSTEM_ID);
            assert_eq!(binds[0]["interface_version"], 0x34);

            let s = smsc.accepted_to(short);
            assert_eq!(s.len(), 1, "{s:#?}");
            assert_eq!(s[0]["source"], "10086");
            assert_eq!(s[0]["data_coding"], 0);
            assert_eq!(s[0]["esm_class"], 0);
            assert_eq!(s[0]["registered_delivery"], 1);
            assert_eq!(s[0]["text"], "Hello! Reply YES for 1 GB.");
            // GSM 03.38 unpacked: '!' is 0x21, like ASCII; nothing here needs the escape.
            assert_eq!(
                s[0]["short_message_hex"],
                hex::encode(
                    kairos::channels::sms::coding::gsm7("Hello! Reply YES for 1 GB.").unwrap()
                )
            );
            // The offer carries the SMSC's message id, which its receipt found.
            let rec = offer_of(t, short).await;
            let id = provider_id(t, rec["id"].as_str().unwrap()).await;
            assert_eq!(id.as_deref(), s[0]["message_id"].as_str());

            let z = smsc.accepted_to(chinese);
            assert_eq!(z.len(), 1, "{z:#?}");
            assert_eq!(z[0]["data_coding"], 8);
            assert_eq!(z[0]["esm_class"], 0);
            assert_eq!(z[0]["text"], zh);
            assert_eq!(
                z[0]["short_message_hex"],
                hex::encode(kairos::channels::sms::coding::ucs2(zh))
            );

            // The long one: two parts behind one 8-bit reference, in order, that read back whole.
            let parts = smsc.accepted_to(long);
            assert_eq!(parts.len(), 2, "{parts:#?}");
            let reference = parts[0]["udh"]["ref"].clone();
            assert!(reference.is_u64());
            let mut joined = String::new();
            for (i, p) in parts.iter().enumerate() {
                assert_eq!(p["data_coding"], 0);
                assert_eq!(p["esm_class"].as_u64().unwrap() & 0x40, 0x40, "UDHI set");
                assert_eq!(p["udh"]["ref"], reference);
                assert_eq!(p["udh"]["total"], 2);
                assert_eq!(p["udh"]["part"], i + 1);
                assert!(p["short_message_hex"]
                    .as_str()
                    .unwrap()
                    .starts_with("050003"));
                joined.push_str(p["text"].as_str().unwrap());
            }
            assert_eq!(joined, long_text);
            // Its provider id is the first part's message id.
            let rec = offer_of(t, long).await;
            let id = provider_id(t, rec["id"].as_str().unwrap()).await;
            assert_eq!(id.as_deref(), parts[0]["message_id"].as_str());

            // Every receipt was answered.
            smsc.wait_for("every deliver_sm answered", |ls| {
                let sent = ls.iter().filter(|l| l["type"] == "deliver_sm").count();
                let answered = ls
                    .iter()
                    .filter(|l| l["type"] == "deliver_sm_resp" && l["status"] == 0)
                    .count();
                sent == 5 && answered == 5
            })
            .await;
        },
    )
    .await;
}

#[tokio::test]
async fn throttled_submits_are_retried_and_the_smsc_gets_each_message_once() {
    let dests = ["8613900006001", "8613900006002", "8613900006003"];
    with_smsc(
        &["--throttle-first=2"],
        |_| {},
        async |t, smsc| {
            let msgs: Vec<(&str, &str)> = dests
                .iter()
                .map(|d| (*d, "Throttled, then taken"))
                .collect();
            ping(t, &msgs).await;
            for d in dests {
                wait_status(t, d, "delivered", Duration::from_secs(15)).await;
                let statuses: Vec<Value> = smsc
                    .submits_to(d)
                    .iter()
                    .map(|l| l["status"].clone())
                    .collect();
                assert_eq!(statuses, vec![json!(0x58), json!(0x58), json!(0)], "{d}");
                assert_eq!(smsc.accepted_to(d).len(), 1, "{d}");
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_submit_the_smsc_never_answers_is_unknown_and_never_resent() {
    let silent = "8613900007001";
    let other = "8613900007002";
    let arg = format!("--silent={silent}");
    with_smsc(
        &[&arg],
        |_| {},
        async |t, smsc| {
            ping(t, &[(silent, "Into the void")]).await;
            let o = wait_status(t, silent, "unknown", Duration::from_secs(10)).await;
            assert_eq!(o["reason"], "submit_timeout");
            // The session is still good for others.
            ping(t, &[(other, "Still here")]).await;
            wait_status(t, other, "delivered", Duration::from_secs(10)).await;
            // A few outbox sweeps later the unknown one was still submitted once only.
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert_eq!(smsc.submits_to(silent).len(), 1);
            assert_eq!(offer_of(t, silent).await["status"], "unknown");
        },
    )
    .await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_nothing_is_submitted() {
    let m = "8613900008001";
    let smsc = Smsc::start(&[]).await;
    let rules = rules();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("kairos.db").display()
    );
    let t = TestApp::start_config(Backend::Sqlite, url, |c| {
        smpp_config(c, smsc.port, rules.path());
        c.channels.sms.smpp.password = "wrong".into();
    })
    .await;
    smsc.wait_for("a refused bind", |ls| {
        ls.iter()
            .any(|l| l["type"] == "bind" && l["accepted"] == false)
    })
    .await;
    ping(&t, &[(m, "Not for you")]).await;
    // Not bound: the deliverer is told to try later (today it gives up after a few tries).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let o = offer_of(&t, m).await;
    assert!(
        o["status"] == "queued" || o["status"] == "failed",
        "never sent: {o:#}"
    );
    assert!(smsc.of_type("submit_sm").is_empty());
    assert!(smsc.of_type("bind").len() >= 2, "binds are tried again");
    assert!(smsc.of_type("bind").iter().all(|b| b["accepted"] == false));
    t.stop().await;
}

/// An SMSC away for a minute: what was decided meanwhile waits in the outbox and goes once.
#[tokio::test]
async fn an_smsc_outage_loses_nothing_and_sends_nothing_twice() {
    let before = ["8613900009001", "8613900009002"];
    let during = ["8613900009011", "8613900009012", "8613900009013"];
    let after = ["8613900009021"];
    with_smsc(
        &[],
        // Later attempts at most 10 s apart, and enough of them to outlast the minute (the
        // defaults do too, but their last attempts come minutes apart).
        |c| {
            c.channels.retry_max_secs = 10;
            c.channels.max_attempts = 20;
        },
        async |t, smsc| {
            let msg = |ds: &[&'static str]| -> Vec<(&'static str, &'static str)> {
                ds.iter().map(|d| (*d, "Outage-proof offer")).collect()
            };
            ping(t, &msg(&before)).await;
            for d in before {
                wait_status(t, d, "delivered", Duration::from_secs(10)).await;
            }
            smsc.kill().await;
            // Decided while the SMSC is away, for a minute.
            ping(t, &msg(&during)).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            smsc.up().await;
            smsc.wait_bound(2).await;
            ping(t, &msg(&after)).await;
            for d in before.iter().chain(&during).chain(&after) {
                let o = wait_status(t, d, "delivered", Duration::from_secs(60)).await;
                assert_eq!(
                    smsc.accepted_to(d).len(),
                    1,
                    "{d} reached the SMSC exactly once: {o:#}"
                );
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_reply_over_smpp_answers_the_offer_it_follows() {
    let yes = "8613900010001";
    let no = "8613900010002";
    let stop = "8613900010003";
    let arg = format!("--reply={yes}=Y,{no}=不要,{stop}=TD");
    with_smsc(
        &[&arg],
        |_| {},
        async |t, smsc| {
            ping(
                t,
                &[
                    (yes, "Reply Y for 1 GB"),
                    (no, "Reply Y for 2 GB"),
                    (stop, "Reply Y for 3 GB, TD to stop"),
                ],
            )
            .await;
            let o = wait_status(t, yes, "accepted", Duration::from_secs(10)).await;
            assert_eq!(o["reason"], "reply: Y");
            let o = wait_status(t, no, "declined", Duration::from_secs(10)).await;
            assert_eq!(o["reason"], "reply: 不要");
            // A stop word declines too (the number has no customer to record the refusal on).
            let o = wait_status(t, stop, "declined", Duration::from_secs(10)).await;
            assert_eq!(o["reason"], "reply: TD");
            // Every reply was acknowledged, and a late receipt did not undo an answer.
            smsc.wait_for("all replies answered", |ls| {
                ls.iter()
                    .filter(|l| l["type"] == "mo_resp" && l["status"] == 0)
                    .count()
                    == 3
            })
            .await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert_eq!(offer_of(t, yes).await["status"], "accepted");
            assert_eq!(offer_of(t, no).await["status"], "declined");
            assert_eq!(offer_of(t, stop).await["status"], "declined");
        },
    )
    .await;
}

/// Bound as a transmitter, Kairos also binds a receiver: the receipt comes back on that
/// session (an SMSC never sends it on a transmitter) and still decides the offer's status.
#[tokio::test]
async fn a_transmitter_bind_gets_its_receipts_on_a_receiver_session() {
    with_smsc(
        &["--dlr-delay-ms=0"],
        |c| c.channels.sms.smpp.bind = "transmitter".into(),
        async |t, smsc| {
            smsc.wait_bound(2).await;
            let binds: Vec<String> = smsc
                .of_type("bind")
                .iter()
                .map(|b| b["command"].as_str().unwrap().to_string())
                .collect();
            assert!(binds.contains(&"bind_transmitter".to_string()), "{binds:?}");
            assert!(binds.contains(&"bind_receiver".to_string()), "{binds:?}");
            ping(t, &[("8613900005101", "Hello over a transmitter.")]).await;
            let o = wait_status(t, "8613900005101", "delivered", Duration::from_secs(10)).await;
            assert_eq!(smsc.submits_to("8613900005101").len(), 1);
            let pid = provider_id(t, o["id"].as_str().unwrap()).await;
            assert!(pid.is_some(), "{o:#}");
            assert_eq!(smsc.of_type("deliver_sm").len(), 1);
        },
    )
    .await;
}

/// Offers counted by status in the store.
async fn status_counts(t: &TestApp) -> std::collections::BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM recommendations GROUP BY status")
            .fetch_all(&t.app.state.db.pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn a_few_hundred_offers_at_a_throttle_reach_the_smsc_once_each() {
    const N: usize = 300;
    let dests: Vec<String> = (0..N).map(|i| format!("86139011{i:05}")).collect();
    with_smsc(
        &["--dlr-delay-ms=50"],
        |c| {
            c.channels.delivery.insert(
                "sms".into(),
                kairos::config::ChannelDelivery {
                    max_per_second: Some(200),
                    concurrency: Some(10),
                },
            );
        },
        async |t, smsc| {
            let msgs: Vec<(&str, &str)> = dests
                .iter()
                .map(|d| (d.as_str(), "Throttled, taken once"))
                .collect();
            ping(t, &msgs).await;
            // Every offer sent, then every receipt applied (counts, not timings: a generous wait).
            let until = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let c = status_counts(t).await;
                if c.get("delivered") == Some(&(N as i64)) {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < until,
                    "not all {N} delivered within 60s: {c:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(
                status_counts(t).await,
                [("delivered".to_string(), N as i64)].into(),
                "nothing else in the store"
            );
            let submits = smsc.of_type("submit_sm");
            assert_eq!(submits.len(), N, "one submit per offer, none refused");
            assert!(submits.iter().all(|s| s["status"] == 0));
            let mut per_dest = std::collections::HashMap::<&str, usize>::new();
            for s in &submits {
                *per_dest
                    .entry(s["destination"].as_str().unwrap())
                    .or_default() += 1;
            }
            assert_eq!(per_dest.len(), N, "every number got its message");
            for d in &dests {
                assert_eq!(per_dest.get(d.as_str()), Some(&1), "{d} submitted once");
            }
            // Every receipt the SMSC sent was answered.
            smsc.wait_for("every deliver_sm answered", |ls| {
                ls.iter()
                    .filter(|l| l["type"] == "deliver_sm_resp" && l["status"] == 0)
                    .count()
                    == N
            })
            .await;
        },
    )
    .await;
}
