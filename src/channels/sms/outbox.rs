//! The embedded default: messages are kept (bounded) for inspection; nothing leaves the host.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use super::segments;
use crate::channels::{ChannelError, Delivery};
use crate::ports::Recommendation;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub recommendation_id: String,
    pub to: String,
    pub text: String,
    pub coding: &'static str,
    pub parts: usize,
}

pub struct Outbox {
    cap: usize,
    items: Mutex<VecDeque<OutboxEntry>>,
}

impl Outbox {
    pub fn new(cap: usize) -> Self {
        Outbox {
            cap,
            items: Mutex::new(VecDeque::new()),
        }
    }

    pub fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        let (coding, parts) = segments(&rec.message);
        let entry = OutboxEntry {
            recommendation_id: rec.id.clone(),
            to: rec.msisdn.to_string(),
            text: rec.message.clone(),
            coding,
            parts,
        };
        let mut q = self.items.lock().expect("outbox lock");
        if q.len() == self.cap {
            q.pop_front();
        }
        q.push_back(entry);
        Ok(Delivery::sent())
    }

    /// Newest last; at most `limit`, optionally for one number.
    pub fn recent(&self, to: Option<&str>, limit: usize) -> Vec<OutboxEntry> {
        self.page(to, limit, 0).0
    }

    /// The `limit` newest messages (optionally to one number) after skipping the `offset`
    /// newest, newest last; and how many messages held match, all pages together.
    pub fn page(&self, to: Option<&str>, limit: usize, offset: usize) -> (Vec<OutboxEntry>, usize) {
        let q = self.items.lock().expect("outbox lock");
        let mut total = 0;
        let mut v = Vec::new();
        for e in q.iter().rev().filter(|e| to.is_none_or(|t| e.to == t)) {
            if total >= offset && v.len() < limit {
                v.push(e.clone());
            }
            total += 1;
        }
        v.reverse();
        (v, total)
    }
}
