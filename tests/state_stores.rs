//! Subscriber state in each durable home: SQLite, PostgreSQL and Redis, for real.

use crate::engine_support;

use engine_support::*;
use kairos::event::Msisdn;
use kairos::state::{RedisStateStore, SqlStateStore, StateStore};
use kairos::store::Db;

async fn round_trip(store: &dyn StateStore) {
    let a = Msisdn::parse(&format!("86139{:08}", rand_u32() % 100_000_000)).unwrap();
    let b = Msisdn::parse(&format!("86138{:08}", rand_u32() % 100_000_000)).unwrap();
    assert_eq!(store.load(&[a, b]).await.unwrap(), vec![None, None]);
    store.save(&[(a, vec![1, 2, 3])]).await.unwrap();
    store.save(&[(a, vec![4, 5]), (b, vec![9])]).await.unwrap();
    assert_eq!(
        store.load(&[b, a]).await.unwrap(),
        vec![Some(vec![9]), Some(vec![4, 5])]
    );
    // Many keys in one call (chunked on SQL).
    let many: Vec<(Msisdn, Vec<u8>)> = (0..450u64)
        .map(|i| {
            (
                Msisdn::parse(&format!("8612{:09}", i)).unwrap(),
                vec![i as u8],
            )
        })
        .collect();
    store.save(&many).await.unwrap();
    let keys: Vec<Msisdn> = many.iter().map(|(m, _)| *m).collect();
    let got = store.load(&keys).await.unwrap();
    assert_eq!(got.len(), 450);
    assert!(got
        .iter()
        .zip(&many)
        .all(|(g, (_, v))| g.as_ref() == Some(v)));
}

fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

#[tokio::test]
async fn sqlite_state_store() {
    let db = fresh_db(Backend::Sqlite).await;
    let store = SqlStateStore::new(Db::connect(&db.url, 2).await.unwrap());
    round_trip(&store).await;
}

#[tokio::test]
async fn postgres_state_store() {
    let db = fresh_db(Backend::Postgres).await;
    let store = SqlStateStore::new(Db::connect(&db.url, 2).await.unwrap());
    round_trip(&store).await;
}

#[tokio::test]
async fn redis_state_store() {
    let url =
        std::env::var("KAIROS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("kairos-test-{}", uuid::Uuid::new_v4().simple());
    let store = RedisStateStore::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required: {e}"));
    round_trip(&store).await;
}

/// Two instances that both believe they own a subscriber (one stalled while its partitions
/// moved): the newer owner's write stands, the older one's is refused and reported.
#[tokio::test]
async fn redis_refuses_a_stale_owners_write() {
    let url =
        std::env::var("KAIROS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("kairos-test-{}", uuid::Uuid::new_v4().simple());
    let old = RedisStateStore::connect(&url, &prefix).await.unwrap();
    let new = RedisStateStore::connect(&url, &prefix).await.unwrap();
    let e1 = old.take_ownership().await.unwrap();
    let e2 = new.take_ownership().await.unwrap();
    assert!(e2 > e1, "epochs grow: {e1} then {e2}");
    let x = Msisdn::parse("8613900000001").unwrap();
    let y = Msisdn::parse("8613900000002").unwrap();
    assert!(old.save(&[(x, vec![1])]).await.unwrap().is_empty());
    assert!(new.save(&[(x, vec![2])]).await.unwrap().is_empty());
    // The stalled owner wakes up and writes both: x is the new owner's, y nobody else's.
    let refused = old.save(&[(x, vec![3]), (y, vec![3])]).await.unwrap();
    assert_eq!(refused, vec![x]);
    assert_eq!(
        new.load(&[x, y]).await.unwrap(),
        vec![Some(vec![2]), Some(vec![3])]
    );
    // Once it owns them again (a later assignment), its writes stand.
    old.take_ownership().await.unwrap();
    assert!(old.save(&[(x, vec![4])]).await.unwrap().is_empty());
    assert_eq!(new.load(&[x]).await.unwrap(), vec![Some(vec![4])]);
    assert!(old.round_trips() >= 5);
}

#[tokio::test]
async fn the_app_keeps_state_in_redis_when_configured() {
    use serde_json::json;
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&["dynamic/missed-call-reminder.rhai"]);
    let mut cfg = config(&db.url, rules.path());
    cfg.state.backend = "redis".into();
    cfg.state.redis_url =
        std::env::var("KAIROS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // A number no other test uses, so Redis may be shared between runs.
    let m = format!("8615{:09}", rand_u32() % 1_000_000_000);
    {
        let app = kairos::app::App::start(cfg.clone()).await.unwrap();
        let c = Client::new(&app);
        c.ingest(&[
            ev(
                &format!("{m}-1"),
                "power_off",
                &m,
                "2026-11-23T22:00:00+08:00",
                json!({}),
            ),
            ev(
                &format!("{m}-2"),
                "missed_call",
                &m,
                "2026-11-23T22:10:00+08:00",
                json!({}),
            ),
            ev(
                &format!("{m}-3"),
                "missed_call",
                &m,
                "2026-11-23T22:20:00+08:00",
                json!({}),
            ),
        ])
        .await;
        app.shutdown().await.unwrap();
    }
    // A different database: only Redis can carry the count across.
    let db2 = fresh_db(Backend::Sqlite).await;
    cfg.database.url = db2.url.clone();
    let app = kairos::app::App::start(cfg).await.unwrap();
    let c = Client::new(&app);
    c.ingest(&[
        ev(
            &format!("{m}-4"),
            "missed_call",
            &m,
            "2026-11-23T22:30:00+08:00",
            json!({}),
        ),
        ev(
            &format!("{m}-5"),
            "power_on",
            &m,
            "2026-11-24T07:00:00+08:00",
            json!({}),
        ),
    ])
    .await;
    let recs = c.recs(&m).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["offer_code"], "MCR-MONTHLY");
    app.shutdown().await.unwrap();
}

/// Portal sessions on one instance see offers delivered by another: the hubs relay through
/// Redis pub/sub.
#[tokio::test]
async fn portal_offers_cross_instances_over_redis() {
    use kairos::channels::portal::PortalHub;
    use kairos::channels::Channel;
    let url =
        std::env::var("KAIROS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("kairos-test-{}", uuid::Uuid::new_v4().simple());
    let (a, b) = (PortalHub::default(), PortalHub::default());
    a.relay_over_redis(&url, &prefix).await.unwrap();
    b.relay_over_redis(&url, &prefix).await.unwrap();
    let mut on_b = b.subscribe();
    let mut on_a = a.subscribe();
    let mut rec = crate::common::offer(
        "r-portal-1",
        "8613900000001",
        "2026-11-23T10:00:00+08:00",
        kairos::ports::Status::Queued,
    );
    rec.channel = "portal".into();
    // The listeners subscribe in the background: send until one arrives.
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            a.send(&rec).await.unwrap();
            if let Ok(Ok(r)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), on_b.recv()).await
            {
                return r;
            }
        }
    })
    .await
    .expect("instance B's session receives A's offer");
    assert_eq!(got, rec);
    // The sender's own sessions hear it through the same relay.
    assert_eq!(on_a.recv().await.unwrap().id, rec.id);
}

/// A reload asked of one instance reloads every instance that shares its Redis: the folder
/// becomes the next version in their database, and the others, told over Redis, run it.
#[tokio::test]
async fn a_rule_reload_reaches_every_instance() {
    let url =
        std::env::var("KAIROS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("kairos-test-{}", uuid::Uuid::new_v4().simple());
    // One database: instances run the version published there.
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&[
        "dynamic/missed-call-reminder.rhai",
        "dynamic/roaming-welcome.rhai",
    ]);
    let start = |db: &str| {
        let mut cfg = config(db, rules.path());
        cfg.state.backend = "redis".into();
        cfg.state.redis_url = url.clone();
        cfg.state.redis_prefix = prefix.clone();
        kairos::app::App::start(cfg)
    };
    let a = start(&db.url).await.unwrap();
    let b = start(&db.url).await.unwrap();
    assert_eq!(b.state.pipeline.rules().rules.len(), 2);
    // Both listeners are subscribed (they connect in the background).
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let topic = format!("{prefix}:rules-reload");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&topic)
            .query_async(&mut conn)
            .await
            .unwrap();
        if n == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "listeners not subscribed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The deployment's rules change, and a marketer reloads on instance A only.
    std::fs::remove_file(rules.path().join("roaming-welcome.rhai")).unwrap();
    let c = Client::new(&a);
    let r: serde_json::Value = c
        .post("/api/v1/rules/reload")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["rules"], 1, "{r}");
    assert_eq!(r["instances_notified"], 2, "{r}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.state.pipeline.rules().rules.len() != 1 {
        assert!(std::time::Instant::now() < deadline, "B never reloaded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
