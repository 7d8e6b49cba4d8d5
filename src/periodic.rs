//! Work done every so often in the background until shutdown: polls for the active rule
//! version, flushes of per-rule counts, SQLite's checkpoints.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

/// The ticks of a background loop: every `period`, the first at once, until `stop` turns
/// true or its sender is gone. A tick missed while the work ran long is not caught up.
pub struct Every {
    tick: Interval,
    stop: watch::Receiver<bool>,
}

impl Every {
    pub fn new(period: Duration, stop: watch::Receiver<bool>) -> Every {
        Every::on(tokio::time::interval(period), stop)
    }

    /// [`Every::new`], the first tick one `period` from now.
    pub fn after(period: Duration, stop: watch::Receiver<bool>) -> Every {
        let first = tokio::time::Instant::now() + period;
        Every::on(tokio::time::interval_at(first, period), stop)
    }

    fn on(mut tick: Interval, stop: watch::Receiver<bool>) -> Every {
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Every { tick, stop }
    }

    /// Waits for the next tick: false when it is time to stop instead.
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.tick.tick() => true,
            _ = self.stop.wait_for(|s| *s) => false,
        }
    }
}

/// Remembers whether the last run failed, so that a database down for a while is reported
/// once, and again only after it has come back and then failed anew.
#[derive(Default)]
pub struct FirstFailure(bool);

impl FirstFailure {
    /// The error of `result` when it starts a run of failures (the caller logs it).
    pub fn of<T, E>(&mut self, result: Result<T, E>) -> Option<E> {
        let first = result.as_ref().is_err() && !self.0;
        self.0 = result.is_err();
        result.err().filter(|_| first)
    }
}

#[cfg(test)]
mod tests {
    use super::FirstFailure;

    #[test]
    fn only_the_first_of_a_run_of_failures_is_passed_on() {
        let mut f = FirstFailure::default();
        let runs: [Result<(), u8>; 5] = [Err(1), Err(2), Ok(()), Err(3), Err(4)];
        let passed: Vec<_> = runs.into_iter().filter_map(|r| f.of(r)).collect();
        assert_eq!(passed, [1, 3]);
    }
}
