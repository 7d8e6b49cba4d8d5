//! A tap on the events entering the engine, for whoever records samples of live traffic
//! (`capture/`). Every source hands its events to [`super::Pipeline::enqueue`], so the tap
//! sits there once and sees HTTP ingest, the CRM's events, answers and the Kafka consumer
//! alike.
//!
//! With no recording running it costs one relaxed atomic load per submission: nothing is
//! cloned, locked or sent. The recorder behind it must never block (it drops and counts
//! what it cannot take), since ingest waits on nothing but the workers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::event::Event;

/// Takes a look at events on their way in. Called on the ingest path: must return at once.
pub trait EventTap: Send + Sync {
    fn offer(&self, event: &Arc<Event>);
}

/// The switch and the recorder behind it.
#[derive(Default)]
pub struct Tap {
    on: AtomicBool,
    recorder: OnceLock<Arc<dyn EventTap>>,
}

impl Tap {
    /// Sets the recorder; the first one set stays (one per engine).
    pub fn attach(&self, recorder: Arc<dyn EventTap>) -> bool {
        self.recorder.set(recorder).is_ok()
    }

    /// Turns the tap on (some recording is running) or off.
    pub fn switch(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// The recorder while the tap is on.
    #[inline]
    pub fn active(&self) -> Option<&dyn EventTap> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        self.recorder.get().map(|r| r.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl EventTap for Seen {
        fn offer(&self, event: &Arc<Event>) {
            self.0.lock().unwrap().push(event.id.to_string());
        }
    }

    #[test]
    fn the_tap_passes_events_only_while_switched_on() {
        let tap = Tap::default();
        assert!(tap.active().is_none(), "nothing attached");
        let seen = Arc::new(Seen::default());
        assert!(tap.attach(seen.clone()));
        assert!(tap.active().is_none(), "attached but off");
        tap.switch(true);
        let ev = crate::event::decode_str(
            r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00+08:00"}"#,
        )
        .unwrap();
        tap.active().unwrap().offer(&Arc::new(ev));
        tap.switch(false);
        assert!(tap.active().is_none());
        assert_eq!(*seen.0.lock().unwrap(), vec!["e1".to_string()]);
    }
}
