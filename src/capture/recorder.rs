//! The recorder: the engine's tap hands it every event while a capture runs; it keeps the
//! ones some capture wants and writes them in the background.
//!
//! On the ingest path it only filters and `try_send`s into a bounded queue: when the writer
//! falls behind, the event is dropped and counted on its capture, and ingest goes on. Each
//! instance looks for running captures every `capture.poll_ms` (at once for changes made
//! through it), so a capture records events arriving on any instance; the database keeps the
//! count and the limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use smallvec::SmallVec;
use tokio::sync::{mpsc, watch, Notify};

use super::filter::Filter;
use super::store::{self, Capture};
use crate::event::Event;
use crate::pipeline::{EventTap, Pipeline};
use crate::store::{Db, StoreError};

/// A running capture as this instance records it.
struct Active {
    id: String,
    filter: Filter,
    /// Events this instance may still hand to the writer: the room left at the last look.
    /// Past it the tap stops taking events for this capture (the database has the exact
    /// count; this only spares the queue).
    budget: AtomicI64,
    /// Dropped since the last look, added to the capture's count then.
    dropped: AtomicI64,
}

/// An event and the captures that want it.
struct Taken {
    event: Arc<Event>,
    into: SmallVec<[Arc<Active>; 2]>,
}

struct Inner {
    db: Db,
    pipeline: Pipeline,
    active: ArcSwap<Vec<Arc<Active>>>,
    queue: mpsc::Sender<Taken>,
    /// Asks the poller to look now.
    look: Notify,
    /// Held while the list of running captures is rebuilt.
    looking: tokio::sync::Mutex<()>,
}

impl EventTap for Inner {
    fn offer(&self, event: &Arc<Event>) {
        let list = self.active.load();
        let mut into: SmallVec<[Arc<Active>; 2]> = SmallVec::new();
        for a in list.iter() {
            if a.filter.matches(event) && a.budget.fetch_sub(1, Ordering::Relaxed) > 0 {
                into.push(a.clone());
            }
        }
        if into.is_empty() {
            return;
        }
        let taken = Taken {
            event: event.clone(),
            into,
        };
        if let Err(mpsc::error::TrySendError::Full(t)) = self.queue.try_send(taken) {
            for a in t.into {
                a.dropped.fetch_add(1, Ordering::Relaxed);
                a.budget.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Records captures on this instance. Cheap to clone.
#[derive(Clone)]
pub struct Recorder(Arc<Inner>);

/// Events written per transaction at most.
const BATCH: usize = 1000;

impl Recorder {
    /// Attaches to `pipeline`'s tap and starts the writer and the poller, which stop when
    /// `stop` turns true.
    pub fn start(
        db: Db,
        pipeline: Pipeline,
        config: &crate::config::CaptureConfig,
        stop: watch::Receiver<bool>,
    ) -> Recorder {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let inner = Arc::new(Inner {
            db,
            pipeline: pipeline.clone(),
            active: ArcSwap::from_pointee(Vec::new()),
            queue: tx,
            look: Notify::new(),
            looking: tokio::sync::Mutex::new(()),
        });
        if !pipeline.tap().attach(inner.clone()) {
            tracing::warn!(
                "capture: the engine's tap already has a recorder; this one records nothing"
            );
        }
        let r = Recorder(inner);
        tokio::spawn(r.clone().write(rx, stop.clone()));
        tokio::spawn(
            r.clone()
                .poll(Duration::from_millis(config.poll_ms.max(10)), stop),
        );
        r
    }

    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// Looks at the running captures now and waits until the tap follows them (a capture
    /// started or stopped through this instance takes effect before the answer).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _one = self.0.looking.lock().await;
        // What was dropped is counted before the list changes, so no count is lost.
        for a in self.0.active.load().iter() {
            let n = a.dropped.swap(0, Ordering::Relaxed);
            if n > 0 {
                if let Err(e) = store::add_dropped(&self.0.db, &a.id, n).await {
                    a.dropped.fetch_add(n, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        let running = store::running(&self.0.db).await?;
        let before = self.0.active.load_full();
        let list: Vec<Arc<Active>> = running
            .into_iter()
            .filter_map(|c| self.follow(&before, c))
            .collect();
        let on = !list.is_empty();
        self.0.active.store(Arc::new(list));
        self.0.pipeline.tap().switch(on);
        Ok(())
    }

    /// The tap's entry for capture `c`: the one it has (its budget brought up to date), or a
    /// new one.
    fn follow(&self, before: &[Arc<Active>], c: Capture) -> Option<Arc<Active>> {
        let room = (c.limit - c.events).max(0);
        if let Some(a) = before.iter().find(|a| a.id == c.id) {
            a.budget.store(room, Ordering::Relaxed);
            return Some(a.clone());
        }
        let filter = match Filter::parse(c.types.as_deref(), c.msisdns.as_deref()) {
            Ok(f) => f,
            Err((field, e)) => {
                tracing::warn!(capture = %c.id, "capture: stored {field} do not parse ({e}); not recording it");
                return None;
            }
        };
        Some(Arc::new(Active {
            id: c.id,
            filter,
            budget: AtomicI64::new(room),
            dropped: AtomicI64::new(0),
        }))
    }

    async fn poll(self, every: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "capture: looking for running captures failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.0.look.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn write(self, mut rx: mpsc::Receiver<Taken>, mut stop: watch::Receiver<bool>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            batch.clear();
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            // Per capture, in the order the events came.
            let mut by: HashMap<&str, Vec<(String, String)>> = HashMap::new();
            let mut order: Vec<&str> = Vec::new();
            for t in &batch {
                let json = t.event.to_json();
                for a in &t.into {
                    let rows = by.entry(a.id.as_str()).or_insert_with(|| {
                        order.push(a.id.as_str());
                        Vec::new()
                    });
                    rows.push((t.event.msisdn.to_string(), json.clone()));
                }
            }
            let mut ended = false;
            for id in order {
                let rows = &by[id];
                match store::append(&self.0.db, id, rows).await {
                    Ok(done) => ended |= done.ended,
                    Err(e) => {
                        tracing::warn!(capture = id, error = %e, "capture: writing events failed; counted as dropped");
                        if let Some(a) = self.0.active.load().iter().find(|a| a.id == id) {
                            a.dropped.fetch_add(rows.len() as i64, Ordering::Relaxed);
                        }
                    }
                }
            }
            if ended {
                // The tap stops at once instead of at the next look.
                self.0.look.notify_one();
            }
        }
    }
}
