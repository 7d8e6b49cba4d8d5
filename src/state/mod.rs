//! Per-subscriber real-time state and where it is kept between batches and restarts.
//!
//! Workers own their subscribers' state in memory (no locks on the hot path) and write the
//! changed entries back through a [`StateStore`] after every batch, before acknowledging it.

mod spec;
mod store;
mod subscriber;
#[cfg(test)]
mod tests;

pub use spec::{
    parse_duration_secs, parse_share_bp, split_filter, Agg, Calendar, Filter, Series, SeriesDef,
    StateSpec,
};
pub use store::{RedisStateStore, SqlStateStore, StateStore, StateStoreError};
pub use subscriber::{
    draw_bp, id_hash, id_hash_parts, offer_key, Contact, LastData, Outcome, OutcomeKind, Pending,
    SubscriberState, Val, MAX_CONTACTS, MAX_OUTCOMES, MAX_SEEN_IDS,
};
