//! One worker: a batch at a time, committed (state, dedup marks, decisions, dead letters)
//! before anything is answered or dispatched.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::commit::{self, DeadRow};
use super::{Deps, Report, Work};
use crate::engine::{Shard, Skip, WARM_GROUP};
use crate::event::{Event, Msisdn};
use crate::ports::{Recommendation, Status};
use crate::state::SubscriberState;

/// Retries a storage call until it succeeds: losing state or decisions is not an option, so
/// an outage stalls this worker (and, through the bounded queue, ingest) instead.
async fn persist<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    deps: &Deps,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let mut backoff = Duration::from_millis(50);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                deps.metrics.store_retries.fetch_add(1, Relaxed);
                tracing::error!(error = %e, "{what} failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn preload(shard: &mut Shard, deps: &Deps, batch: &[Work]) {
    let mut missing: Vec<Msisdn> = Vec::new();
    let mut seen = HashSet::new();
    for w in batch {
        let mut need = |m: Msisdn| {
            if !shard.contains(&m) && seen.insert(m) {
                missing.push(m);
            }
        };
        match w {
            Work::Events(evs, _) => evs.iter().for_each(|e| need(e.msisdn)),
            Work::Propose(r, _) => need(r.msisdn),
            Work::Usage(m, _) | Work::Recheck(m, _, _) => need(*m),
            Work::Barrier(_) | Work::DropCache(_) => {}
        }
    }
    if missing.is_empty() {
        return;
    }
    let states = persist(deps, "loading subscriber state", || {
        deps.state.load(&missing)
    })
    .await;
    let profiles = persist(deps, "loading profiles", || deps.profiles.load(&missing)).await;
    for ((m, st), p) in missing.into_iter().zip(states).zip(profiles) {
        let state = match st.map(|b| SubscriberState::from_bytes(&b)) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::error!(msisdn = %m, "stored state unreadable, starting fresh: {e}");
                SubscriberState::default()
            }
            None => SubscriberState::default(),
        };
        let profile = p
            .map(Arc::new)
            .unwrap_or_else(|| deps.default_profile.clone());
        shard.insert(m, state, profile);
    }
}

/// Offers of earlier decisions that a better one replaced in their arbitration window
/// become `lost_arbitration`, naming the winner: changed in place when this batch decided
/// them, else read back (they were stored `deferred`, never sent) and returned to be
/// written with the batch.
async fn revise(
    deps: &Deps,
    recs: &mut [Recommendation],
    revoked: &mut Vec<crate::decision::Revoked>,
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for v in revoked.drain(..) {
        if let Some(r) = recs.iter_mut().find(|r| r.id == v.id) {
            v.apply(r);
            continue;
        }
        let stored = persist(deps, "reading an offer its window replaced", || {
            deps.recs.get(&v.id)
        })
        .await;
        if let Some(mut r) = stored.filter(|r| r.status == Status::Deferred) {
            v.apply(&mut r);
            out.push(r);
        }
    }
    out
}

fn usage_json(shard: &Shard, deps: &Deps, m: Msisdn) -> serde_json::Value {
    let Some(entry) = shard.entries.get(&m) else {
        return serde_json::json!({});
    };
    let rules = deps.rules();
    let st = &entry.state;
    let mut out = serde_json::Map::new();
    for series in &rules.spec.defs {
        let (key, value) = match &series.def {
            crate::state::SeriesDef::Window {
                ty,
                attr,
                agg,
                span_secs,
            } => {
                let v = st.window(series, st.watermark);
                let name = usage_name(&format!("{agg:?}"), ty, attr.as_deref(), *span_secs);
                (
                    name,
                    if v.is_nan() {
                        serde_json::Value::Null
                    } else {
                        serde_json::json!(v)
                    },
                )
            }
            crate::state::SeriesDef::CountSince { ty, reset } => (
                format!("{}_count_since_{}", readable(ty), readable(reset)),
                serde_json::json!(st.count_since(series)),
            ),
            crate::state::SeriesDef::Last { ty, attr: None } => (
                format!("last_{}_at", readable(ty)),
                st.last(series)
                    .and_then(|l| chrono::DateTime::from_timestamp(l.ts, 0))
                    .map(|t| serde_json::json!(crate::ports::utc_ms::text(&t.fixed_offset())))
                    .unwrap_or(serde_json::Value::Null),
            ),
            _ => continue,
        };
        out.insert(key, value);
    }
    if let Some(t) = chrono::DateTime::from_timestamp(st.watermark, 0).filter(|_| st.watermark != 0)
    {
        let at = crate::ports::utc_ms::text(&t.fixed_offset());
        out.insert("last_event_at".into(), serde_json::json!(at));
    }
    serde_json::Value::Object(out)
}

/// A usage figure's name as a person reads it, the unit in the name:
/// `count(call[international=true], 604800s)` is `call_international_count_7d`, a sum of
/// `data_session.bytes` over a day `data_session_bytes_sum_1d`.
fn usage_name(agg: &str, ty: &str, attr: Option<&str>, span_secs: i64) -> String {
    let attr = attr
        .map(|a| format!("_{}", readable(a)))
        .unwrap_or_default();
    format!(
        "{}{attr}_{}_{}",
        readable(ty),
        agg.to_lowercase(),
        span(span_secs)
    )
}

/// `call[international=true,country=JP]` as `call_international_country_jp`.
fn readable(ty: &str) -> String {
    let (base, filter) = match ty.split_once('[') {
        Some((b, f)) => (b, f.trim_end_matches(']')),
        None => (ty, ""),
    };
    let mut out = base.to_lowercase();
    for cond in filter.split(',').filter(|c| !c.is_empty()) {
        let (k, v) = cond.split_once('=').unwrap_or((cond, "true"));
        let part = match v.trim() {
            "true" => k.trim().to_string(),
            "false" => format!("not_{}", k.trim()),
            v => format!("{}_{}", k.trim(), v.trim_matches('"')),
        };
        out.push('_');
        out.push_str(&part.to_lowercase());
    }
    out.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `604800` as `7d`, `3600` as `1h`.
fn span(secs: i64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn events_in(w: &Work) -> usize {
    match w {
        Work::Events(evs, _) => evs.len(),
        _ => 1,
    }
}

pub(crate) async fn run(id: usize, mut rx: mpsc::Receiver<Work>, deps: Arc<Deps>) {
    let mut shard = Shard::default();
    shard.events_own = deps.events_own;
    shard.reachable = deps.reachable.clone();
    let mut batch: Vec<Work> = Vec::with_capacity(deps.batch_size);
    let mut recs: Vec<Recommendation> = Vec::new();
    let mut failures = Vec::new();
    let mut dead: Vec<DeadRow> = Vec::new();
    let mut acks: Vec<(super::Ack, Report, std::ops::Range<usize>)> = Vec::new();
    let mut replies: Vec<(oneshot::Sender<Vec<Recommendation>>, std::ops::Range<usize>)> =
        Vec::new();
    let mut barriers: Vec<oneshot::Sender<()>> = Vec::new();
    let mut drop_cache = false;
    let mut upcoming: Vec<Msisdn> = Vec::with_capacity(deps.batch_size);
    // The batch whose commit is under way: the next batch is read, loaded and run meanwhile,
    // so the engine's work and the database's overlap instead of taking turns.
    let mut inflight: Option<Inflight> = None;
    loop {
        let first = match inflight.as_mut() {
            Some(c) => tokio::select! {
                done = &mut c.commit => {
                    let c = inflight.take().expect("in flight");
                    finish(&deps, &mut shard, c, done);
                    continue;
                }
                w = rx.recv() => w,
            },
            None => rx.recv().await,
        };
        let Some(first) = first else { break };
        // Whatever is queued, from any number of requests, shares this batch's commit.
        batch.clear();
        let mut taken = events_in(&first);
        batch.push(first);
        while taken < deps.batch_size {
            match rx.try_recv() {
                Ok(w) => {
                    taken += events_in(&w);
                    batch.push(w);
                }
                Err(_) => break,
            }
        }
        shard.tick();
        preload(&mut shard, &deps, &batch).await;
        let loaded = deps.loaded.load_full();
        let (rules, policy) = (&loaded.rules, &loaded.policy);
        recs.clear();
        dead.clear();
        upcoming.clear();
        for w in &batch {
            if let Work::Events(evs, _) = w {
                upcoming.extend(evs.iter().map(|e| e.msisdn));
            }
        }
        let mut next = 0;
        let started = std::time::Instant::now();
        for w in batch.drain(..) {
            match w {
                Work::Events(evs, ack) => {
                    let start = recs.len();
                    let mut report = Report::default();
                    for ev in evs {
                        if next % WARM_GROUP == 0 {
                            let end = (next + WARM_GROUP).min(upcoming.len());
                            shard.warm(&upcoming[next..end]);
                        }
                        next += 1;
                        failures.clear();
                        let r = shard.process(
                            rules,
                            &deps.settings,
                            policy,
                            &deps.default_profile,
                            &ev,
                            &mut recs,
                            &mut failures,
                        );
                        deps.metrics
                            .rule_errors
                            .fetch_add(failures.len() as u64, Relaxed);
                        let tripped = failures.iter().filter(|f| f.quarantined).count();
                        deps.metrics
                            .rule_quarantines
                            .fetch_add(tripped as u64, Relaxed);
                        match r {
                            Ok(()) => {
                                report.processed += 1;
                                deps.metrics.processed.fetch_add(1, Relaxed);
                            }
                            Err(Skip::Duplicate) => {
                                report.duplicates += 1;
                                deps.metrics.duplicates.fetch_add(1, Relaxed);
                                report.skipped.push(skipped(&ev, "duplicate", None));
                            }
                            Err(Skip::Late { behind_secs }) => {
                                report.late += 1;
                                deps.metrics.late.fetch_add(1, Relaxed);
                                let reason = format!("event time is {behind_secs}s behind this subscriber's latest event, more than the allowed lateness");
                                report
                                    .skipped
                                    .push(skipped(&ev, "late", Some(reason.clone())));
                                dead.push((
                                    "engine".into(),
                                    Some("ts".into()),
                                    reason,
                                    ev.to_json().into_bytes(),
                                ));
                            }
                            Err(Skip::UnknownType) => {
                                report.unknown_type += 1;
                                deps.metrics.unknown_type.fetch_add(1, Relaxed);
                                let reason = format!("unknown event type {:?}: not in the contract and no rule listens to it", ev.kind.as_str());
                                report.skipped.push(skipped(
                                    &ev,
                                    "unknown_type",
                                    Some(reason.clone()),
                                ));
                                dead.push((
                                    "engine".into(),
                                    Some("type".into()),
                                    reason,
                                    ev.to_json().into_bytes(),
                                ));
                            }
                        }
                    }
                    if let Some(a) = ack {
                        acks.push((a, report, start..recs.len()));
                    }
                }
                Work::Propose(req, tx) => {
                    let start = recs.len();
                    recs.extend(shard.propose(policy, &deps.default_profile, &req));
                    replies.push((tx, start..recs.len()));
                }
                Work::Usage(m, tx) => {
                    let _ = tx.send(usage_json(&shard, &deps, m));
                }
                Work::Recheck(m, live, tx) => {
                    let _ = tx.send(match shard.entries.get(&m) {
                        Some(e) => super::rank::recheck(policy, rules, live, &e.state, &e.profile),
                        None => live,
                    });
                }
                Work::Barrier(tx) => barriers.push(tx),
                Work::DropCache(tx) => {
                    drop_cache = true;
                    barriers.push(tx);
                }
            }
        }
        let slow = crate::engine::account(rules, &deps.settings, started.elapsed());
        deps.metrics
            .rule_quarantines
            .fetch_add(slow.len() as u64, Relaxed);
        // What this batch decided may revise offers the batch before stored, and its state
        // must follow that batch's into the store: the earlier commit ends first.
        if let Some(mut c) = inflight.take() {
            let done = (&mut c.commit).await;
            finish(&deps, &mut shard, c, done);
        }
        // Published before anything is committed: a crash at any point before the state (with
        // its dedup marks) is stored reruns these events, which decide and publish the same
        // decisions under the same ids again. Published after, a crash in between would leave
        // decisions stored but never on the stream.
        let revised = revise(&deps, &mut recs, &mut shard.revoked).await;
        if let Some(log) = &deps.decision_log {
            if !recs.is_empty() || !revised.is_empty() {
                persist(&deps, "publishing the batch's decisions", || {
                    log.publish(&recs)
                })
                .await;
                if !revised.is_empty() {
                    persist(&deps, "publishing the batch's revised decisions", || {
                        log.publish(&revised)
                    })
                    .await;
                }
                deps.metrics
                    .published
                    .fetch_add((recs.len() + revised.len()) as u64, Relaxed);
            }
        }
        let dirty = shard.take_dirty();
        let (d, batch_recs, batch_dead) = (
            deps.clone(),
            std::mem::take(&mut recs),
            std::mem::take(&mut dead),
        );
        let commit = tokio::spawn(async move {
            let (fresh, state_done) = persist(&d, "committing the batch", || {
                commit::decisions_and_state(&d, &dirty, &batch_recs, &revised, &batch_dead)
            })
            .await;
            let fenced = if state_done {
                Vec::new()
            } else {
                persist(&d, "saving subscriber state", || {
                    commit::state_elsewhere(&d, &dirty)
                })
                .await
            };
            Committed {
                fresh,
                fenced,
                recs: batch_recs,
                dead: batch_dead.len(),
            }
        });
        let mut c = Inflight {
            commit,
            acks: std::mem::take(&mut acks),
            replies: std::mem::take(&mut replies),
            barriers: std::mem::take(&mut barriers),
            drop_cache: std::mem::take(&mut drop_cache),
        };
        if c.drop_cache {
            // The cache is dropped once this batch is stored; the next one loads afresh.
            let done = (&mut c.commit).await;
            finish(&deps, &mut shard, c, done);
        } else {
            inflight = Some(c);
        }
    }
    if let Some(mut c) = inflight.take() {
        let done = (&mut c.commit).await;
        finish(&deps, &mut shard, c, done);
    }
    tracing::debug!(worker = id, "worker stopped");
}

/// What a batch's commit gives back to the worker.
struct Committed {
    fresh: Vec<Recommendation>,
    /// Subscribers whose state write a newer owner fenced off.
    fenced: Vec<Msisdn>,
    recs: Vec<Recommendation>,
    dead: usize,
}

/// A batch being committed, with whom to answer once it is durable.
struct Inflight {
    commit: tokio::task::JoinHandle<Committed>,
    acks: Vec<(super::Ack, Report, std::ops::Range<usize>)>,
    replies: Vec<(oneshot::Sender<Vec<Recommendation>>, std::ops::Range<usize>)>,
    barriers: Vec<oneshot::Sender<()>>,
    drop_cache: bool,
}

/// Durable from here on: answer, dispatch, and make room. Entries the next batch changed
/// are dirty and stay cached (eviction skips them), so nothing newer than the store is let go.
fn finish(
    deps: &Deps,
    shard: &mut Shard,
    c: Inflight,
    done: Result<Committed, tokio::task::JoinError>,
) {
    // The commit retries until it succeeds; only a panic ends it otherwise, and answering
    // then would claim durability that is not there.
    let done = done.expect("the batch commit task");
    // A newer owner holds these now: what this worker cached of them is stale.
    for m in &done.fenced {
        shard.entries.remove(m);
    }
    deps.metrics
        .state_fenced
        .fetch_add(done.fenced.len() as u64, Relaxed);
    if c.drop_cache {
        shard.entries.clear();
    }
    let evicted = shard.evict_to(deps.max_cached_per_worker);
    if evicted > 0 {
        deps.metrics.evicted.fetch_add(evicted as u64, Relaxed);
    }
    let fresh = done.fresh;
    deps.metrics
        .recommendations
        .fetch_add(fresh.len() as u64, Relaxed);
    deps.metrics.suppressed.fetch_add(
        fresh
            .iter()
            .filter(|r| r.status == Status::Suppressed)
            .count() as u64,
        Relaxed,
    );
    deps.metrics.decisions.add(&fresh);
    if done.dead > 0 {
        deps.metrics
            .dead_letters_engine
            .fetch_add(done.dead as u64, Relaxed);
    }
    for (a, mut report, range) in c.acks {
        if a.decisions {
            report.decisions = done.recs[range].to_vec();
        }
        let _ = a.tx.send(report);
    }
    for (tx, range) in c.replies {
        let _ = tx.send(done.recs[range].to_vec());
    }
    for b in c.barriers {
        let _ = b.send(());
    }
    // Queued offers not handed over here (dispatcher full or gone) stay in the outbox,
    // which the dispatcher sweeps.
    if let Some(d) = &deps.dispatcher {
        for r in fresh.into_iter().filter(|r| r.status == Status::Queued) {
            if !d.offer(r) {
                break;
            }
        }
    }
}

fn skipped(ev: &Event, result: &'static str, reason: Option<String>) -> super::Skipped {
    super::Skipped {
        id: ev.id.to_string(),
        msisdn: ev.msisdn,
        result,
        reason,
    }
}

#[cfg(test)]
mod usage_names {
    use super::*;

    #[test]
    fn usage_figures_have_names_people_read() {
        assert_eq!(
            usage_name("Count", "call[international=true]", None, 604_800),
            "call_international_count_7d"
        );
        assert_eq!(
            usage_name("Sum", "data_session", Some("bytes"), 86_400),
            "data_session_bytes_sum_1d"
        );
        assert_eq!(
            readable("call[country=JP,roaming=false]"),
            "call_country_jp_not_roaming"
        );
        assert_eq!(span(5_400), "90m");
        assert_eq!(span(45), "45s");
    }
}
