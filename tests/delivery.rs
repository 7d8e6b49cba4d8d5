//! The outbox's deliverer against both databases, with channels whose behaviour the test
//! scripts: lanes per channel, retries now and later, permanent refusals, interrupted sends,
//! receipts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common;

use common::on_both_urls;
use kairos::channels::{
    Channel, ChannelError, Delivery, Dispatcher, OutboxSettings, Receipt, Registry, Reply,
};
use kairos::pipeline::RecStore;
use kairos::ports::{Recommendation, Status};
use kairos::store::Db;

/// What a scripted channel does on its n-th call (1-based).
type Script = dyn Fn(u32) -> Result<Delivery, ChannelError> + Send + Sync;

struct Scripted {
    name: String,
    calls: AtomicU32,
    script: Box<Script>,
    idempotent: bool,
    /// Never answers (a gateway that hangs).
    hang: bool,
}

#[async_trait::async_trait]
impl Channel for Scripted {
    fn name(&self) -> &str {
        &self.name
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    async fn send(&self, _rec: &Recommendation) -> Result<Delivery, ChannelError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hang {
            std::future::pending::<()>().await;
        }
        (self.script)(n)
    }
}

fn scripted(
    name: &str,
    script: impl Fn(u32) -> Result<Delivery, ChannelError> + Send + Sync + 'static,
) -> Scripted {
    Scripted {
        name: name.into(),
        calls: AtomicU32::new(0),
        script: Box::new(script),
        idempotent: true,
        hang: false,
    }
}

fn queued(id: &str, channel: &str) -> Recommendation {
    let mut r = common::sms_rec(id, "8613900002001");
    r.channel = channel.into();
    r.status = Status::Queued;
    r
}

fn settings(tweak: impl FnOnce(&mut kairos::config::ChannelsConfig)) -> OutboxSettings {
    let mut c = kairos::config::ChannelsConfig {
        outbox_sweep_secs: 1,
        retry_base_ms: 50,
        max_attempts: 3,
        ..Default::default()
    };
    tweak(&mut c);
    OutboxSettings::from_config(&c, true)
}

/// Starts a deliverer over `channels` on a fresh database; stores and offers `recs`.
async fn deliver(
    url: &str,
    channels: Vec<Arc<Scripted>>,
    settings: OutboxSettings,
    recs: &[Recommendation],
) -> (RecStore, Dispatcher, Registry) {
    let db = Db::connect(url, 4).await.expect("database");
    let store = RecStore::new(db);
    let mut registry = Registry::default();
    for c in channels {
        registry.add(c);
    }
    let (d, _) = Dispatcher::start(registry.clone(), store.clone(), settings);
    store.insert(recs).await.expect("stored");
    for r in recs {
        d.offer(r.clone());
    }
    (store, d, registry)
}

/// Waits until `id` has `status`, for at most `secs`; returns the record then.
async fn until(store: &RecStore, id: &str, status: Status, secs: u64) -> Recommendation {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let r = store.get(id).await.expect("read").expect("stored");
        if r.status == status {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} is {:?} ({:?}), not {status:?}",
            r.status,
            r.reason
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_hanging_channel_holds_up_only_its_own_offers() {
    on_both_urls(async |_, url| {
        let stuck = Arc::new(Scripted {
            hang: true,
            ..scripted("stuck", |_| Ok(Delivery::sent()))
        });
        let fine = Arc::new(scripted("fine", |_| Ok(Delivery::sent())));
        let mut recs: Vec<Recommendation> = (0..20)
            .map(|i| queued(&format!("stuck-{i}"), "stuck"))
            .collect();
        recs.extend((0..20).map(|i| queued(&format!("fine-{i}"), "fine")));
        let (store, _d, _) = deliver(
            &url,
            vec![stuck.clone(), fine.clone()],
            settings(|_| {}),
            &recs,
        )
        .await;
        for i in 0..20 {
            until(&store, &format!("fine-{i}"), Status::Sent, 10).await;
        }
        assert_eq!(fine.calls.load(Ordering::SeqCst), 20);
        // The stuck lane has its default four sends in flight and the rest waiting.
        assert_eq!(stuck.calls.load(Ordering::SeqCst), 4);
        let r = store.get("stuck-19").await.unwrap().unwrap();
        assert_eq!(r.status, Status::Queued);
    })
    .await;
}

#[tokio::test]
async fn transient_failures_are_tried_again_later_until_one_goes_through() {
    on_both_urls(async |_, url| {
        // Three quick tries fail (one attempt), two more fail, the sixth call goes through.
        let flaky = Arc::new(scripted("sms", |n| {
            if n <= 5 {
                Err(ChannelError::Transient(format!("503 on call {n}")))
            } else {
                Ok(Delivery::sent_as(format!("smsc-{n}")))
            }
        }));
        let (store, _d, _) = deliver(
            &url,
            vec![flaky.clone()],
            settings(|_| {}),
            &[queued("r1", "sms")],
        )
        .await;
        let r = until(&store, "r1", Status::Sent, 15).await;
        assert_eq!(r.reason, None);
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            6,
            "sent once, never again"
        );
        let d = store.delivery("r1").await.unwrap().unwrap();
        assert_eq!(d.attempts, 2);
        assert_eq!(d.provider_id.as_deref(), Some("smsc-6"));
    })
    .await;
}

/// A quiet-hours offer is stored `deferred` until its `not_before`: handing it over early
/// sends nothing, and the outbox sweep sends it once the time has come, once.
#[tokio::test]
async fn a_deferred_offer_goes_out_at_its_time_and_not_before() {
    on_both_urls(async |_, url| {
        let sms = Arc::new(scripted("sms", |n| {
            Ok(Delivery::sent_as(format!("smsc-{n}")))
        }));
        let mut r = queued("night", "sms");
        // Far enough ahead that the set-up (migrations on a loaded machine took over 1.5 s)
        // and the wait below end before it.
        let due = chrono::Utc::now().fixed_offset() + chrono::Duration::seconds(8);
        r.status = Status::Deferred;
        r.reason = Some("quiet_hours".into());
        r.not_before = Some(due);
        let (store, d, _) = deliver(&url, vec![sms.clone()], settings(|_| {}), &[r.clone()]).await;
        // Offered again and swept meanwhile: still nothing before its time.
        d.offer(r.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            sms.calls.load(Ordering::SeqCst),
            0,
            "nothing sent in the quiet hours"
        );
        let stored = store.get("night").await.unwrap().unwrap();
        assert_eq!(stored.status, Status::Deferred);
        let next = store
            .delivery("night")
            .await
            .unwrap()
            .unwrap()
            .next_attempt_at;
        assert_eq!(
            next.map(|t| t.timestamp_millis()),
            Some(due.timestamp_millis())
        );
        assert!(
            chrono::Utc::now() < due,
            "the checks above ran in the quiet hours"
        );
        let sent = until(&store, "night", Status::Sent, 20).await;
        assert!(chrono::Utc::now() >= due, "sent after its time");
        // Stored as written on output: to the millisecond.
        assert_eq!(
            sent.not_before.map(|t| t.timestamp_millis()),
            Some(due.timestamp_millis())
        );
        assert_eq!(sms.calls.load(Ordering::SeqCst), 1, "sent once");
    })
    .await;
}

#[tokio::test]
async fn permanent_refusals_are_not_retried_and_transient_ones_give_up() {
    on_both_urls(async |_, url| {
        let refusing = Arc::new(scripted("refusing", |_| {
            Err(ChannelError::Permanent("invalid destination".into()))
        }));
        let down = Arc::new(scripted("down", |_| {
            Err(ChannelError::Transient("connection refused".into()))
        }));
        let (store, _d, _) = deliver(
            &url,
            vec![refusing.clone(), down.clone()],
            settings(|c| c.max_attempts = 2),
            &[queued("p1", "refusing"), queued("t1", "down")],
        )
        .await;
        let r = until(&store, "p1", Status::Failed, 10).await;
        assert_eq!(r.reason.as_deref(), Some("channel_refused"));
        assert_eq!(refusing.calls.load(Ordering::SeqCst), 1);
        // While it waits for its next attempt the offer says why it has not gone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = store.get("t1").await.unwrap().unwrap();
            if r.reason.as_deref() == Some("retrying") || r.status == Status::Failed {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never rescheduled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = until(&store, "t1", Status::Failed, 15).await;
        assert_eq!(r.reason.as_deref(), Some("channel_error"));
        assert_eq!(
            down.calls.load(Ordering::SeqCst),
            6,
            "two attempts of three tries"
        );
        assert_eq!(store.delivery("t1").await.unwrap().unwrap().attempts, 2);
    })
    .await;
}

#[tokio::test]
async fn an_interrupted_send_is_unknown_where_the_provider_cannot_tell_a_repeat() {
    on_both_urls(async |_, url| {
        let smsc = Arc::new(Scripted {
            idempotent: false,
            ..scripted("smsc", |_| Ok(Delivery::sent()))
        });
        let gateway = Arc::new(scripted("gateway", |_| Ok(Delivery::sent())));
        let recs = [queued("s1", "smsc"), queued("g1", "gateway")];
        let db = Db::connect(&url, 4).await.unwrap();
        let store = RecStore::new(db);
        store.insert(&recs).await.unwrap();
        // A deliverer claimed both and died mid-send: its claims have lapsed.
        let now = chrono::Utc::now().timestamp_millis();
        for r in &recs {
            assert_eq!(
                store.claim(&r.id, now, now - 1).await.unwrap(),
                Some(1),
                "first attempt"
            );
        }
        let mut registry = Registry::default();
        registry.add(smsc.clone());
        registry.add(gateway.clone());
        let (_d, _) = Dispatcher::start(registry, store.clone(), settings(|_| {}));
        let r = until(&store, "s1", Status::Unknown, 10).await;
        assert_eq!(r.reason.as_deref(), Some("interrupted_send"));
        assert_eq!(smsc.calls.load(Ordering::SeqCst), 0, "never resent blindly");
        // The gateway recognises the idempotency key, so sending again is safe.
        until(&store, "g1", Status::Sent, 10).await;
        assert_eq!(gateway.calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn receipts_find_their_offer_by_the_providers_id() {
    on_both_urls(async |_, url| {
        let smsc = Arc::new(scripted("sms", |n| Ok(Delivery::sent_as(format!("m-{n}")))));
        let (store, _d, registry) = deliver(
            &url,
            vec![smsc],
            settings(|_| {}),
            &[queued("a", "sms"), queued("b", "sms")],
        )
        .await;
        until(&store, "a", Status::Sent, 10).await;
        until(&store, "b", Status::Sent, 10).await;
        let pid_b = store.delivery("b").await.unwrap().unwrap().provider_id;
        let pid_b = pid_b.expect("provider id kept");
        registry.receipts.report(Receipt {
            channel: "sms".into(),
            provider_id: pid_b,
            status: Status::Delivered,
            reason: None,
        });
        registry.receipts.report(Receipt {
            channel: "sms".into(),
            provider_id: "nobody-knows-me".into(),
            status: Status::Failed,
            reason: Some("undelivered".into()),
        });
        until(&store, "b", Status::Delivered, 10).await;
        assert_eq!(store.get("a").await.unwrap().unwrap().status, Status::Sent);
        // A reply ("Y" to an SMSC, relayed as a deliver_sm) answers the newest live offer;
        // a receipt arriving after the answer does not undo it.
        registry.receipts.reply(Reply {
            channel: "sms".into(),
            from: kairos::event::Msisdn::parse("8613900002001").unwrap(),
            text: "Y".into(),
        });
        let answered = until(&store, "b", Status::Accepted, 10).await;
        assert_eq!(answered.reason.as_deref(), Some("reply: Y"));
        registry.receipts.report(Receipt {
            channel: "sms".into(),
            provider_id: store
                .delivery("b")
                .await
                .unwrap()
                .unwrap()
                .provider_id
                .unwrap(),
            status: Status::Failed,
            reason: Some("late".into()),
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            store.get("b").await.unwrap().unwrap().status,
            Status::Accepted
        );
    })
    .await;
}

/// Offers handed over together are claimed and recorded in batches (a write per offer was
/// most of the outbox's cost): each still goes out once, with its own provider id.
#[tokio::test]
async fn offers_queued_together_each_go_out_once_with_their_own_provider_id() {
    on_both_urls(async |_, url| {
        let smsc = Arc::new(scripted("sms", |n| Ok(Delivery::sent_as(format!("m-{n}")))));
        let recs: Vec<Recommendation> = (0..300)
            .map(|i| queued(&format!("many-{i}"), "sms"))
            .collect();
        let (store, _d, _) = deliver(
            &url,
            vec![smsc.clone()],
            settings(|c| c.concurrency = 16),
            &recs,
        )
        .await;
        let mut ids = std::collections::HashSet::new();
        for r in &recs {
            until(&store, &r.id, Status::Sent, 20).await;
            let d = store.delivery(&r.id).await.unwrap().unwrap();
            assert_eq!(d.attempts, 1, "{} claimed once", r.id);
            assert!(ids.insert(d.provider_id.expect("provider id kept")));
        }
        assert_eq!(smsc.calls.load(Ordering::SeqCst), 300, "each sent once");
    })
    .await;
}

/// A customer can answer before the send's outcome is written (a portal click, a quick
/// reply): the answer stands, and the provider's id is still recorded for the receipts.
#[tokio::test]
async fn an_answer_given_while_the_send_is_under_way_stands() {
    on_both_urls(async |_, url| {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(tokio::sync::Notify::new());
        struct Gated {
            gate: Arc<tokio::sync::Semaphore>,
            started: Arc<tokio::sync::Notify>,
        }
        #[async_trait::async_trait]
        impl Channel for Gated {
            fn name(&self) -> &str {
                "sms"
            }
            async fn send(&self, _rec: &Recommendation) -> Result<Delivery, ChannelError> {
                self.started.notify_one();
                let _ = self.gate.acquire().await.expect("gate open").forget();
                Ok(Delivery::sent_as("quick-1".to_string()))
            }
        }
        let db = Db::connect(&url, 4).await.expect("database");
        let store = RecStore::new(db);
        let mut registry = Registry::default();
        registry.add(Arc::new(Gated {
            gate: gate.clone(),
            started: started.clone(),
        }));
        let (d, _) = Dispatcher::start(registry, store.clone(), settings(|_| {}));
        let rec = queued("quick", "sms");
        store.insert(std::slice::from_ref(&rec)).await.unwrap();
        d.offer(rec);
        started.notified().await;
        store
            .set_status("quick", Status::Accepted, Some("reply: Y"))
            .await
            .unwrap();
        gate.add_permits(1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.provider_id("quick").await.unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "outcome written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = store.get("quick").await.unwrap().unwrap();
        assert_eq!(r.status, Status::Accepted);
        assert_eq!(r.reason.as_deref(), Some("reply: Y"));
        assert_eq!(
            store.provider_id("quick").await.unwrap().as_deref(),
            Some("quick-1")
        );
    })
    .await;
}
