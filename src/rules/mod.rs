//! Marketers' rules: one Rhai file each under `rules/`, compiled once into an immutable
//! [`RuleSet`] that workers share and that can be swapped whole (hot reload).

mod breaker;
mod facts;
mod filter;
mod load;
mod meta;
mod query;
mod sandbox;
mod schema;
pub mod templates;
#[cfg(test)]
mod tests;
mod timing;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use breaker::{Breaker, Quarantine, TimeWindow};
pub use facts::{zone, Fact, Facts, LocalTime, OwnedFacts, SharedFacts};
pub use filter::Predicate;
pub use load::{
    explain_error, load_all, load_all_with, load_dir, load_dir_with, load_sources,
    load_sources_with, Progress, RuleError, RuleErrors, MAX_FILE_BYTES,
};
pub use meta::{Category, RuleKind, RuleMeta, RuleTest, BASE_VARIANT, FIELDS, STATIC_TYPES};
pub use query::{StateQuery, STATE_FUNCTIONS};
pub use sandbox::{
    country_name, country_name_in, with_deadline, EventView, ProfileView, HELPERS, TIERS,
};
pub use timing::{RunTimes, RunTimesSnapshot, RUN_BUCKETS_NS};

use crate::config::ScriptLimits;
use crate::event::{EventType, TypeMap};
use crate::state::StateSpec;

/// Live counters per rule; they survive in the rule set that owns them.
#[derive(Debug, Default)]
pub struct RuleStats {
    pub evaluated: AtomicU64,
    pub matched: AtomicU64,
    pub errors: AtomicU64,
    /// How long its script runs take (`kairos_rule_evaluation_seconds`).
    pub time: RunTimes,
}

impl RuleStats {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.evaluated.load(Ordering::Relaxed),
            self.matched.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

pub struct Rule {
    pub meta: RuleMeta,
    pub file: PathBuf,
    /// The file's text: a rule's own tests and dry runs compile it alone again, and a rule
    /// published from the database has no file on disk to read it from.
    pub source: Arc<str>,
    /// Functions only: the declaration map is not re-evaluated per event.
    pub ast: Arc<rhai::AST>,
    pub has_condition: bool,
    pub has_offer: bool,
    pub tests: Vec<RuleTest>,
    pub stats: RuleStats,
    /// Quarantines the rule after repeated failures; reset by a reload (a new rule set).
    pub breaker: Breaker,
    /// What loads but would keep the rule from ever firing (`schema::warnings`).
    pub warnings: Vec<RuleError>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.meta.id)
            .field("file", &self.file)
            .finish()
    }
}

/// All loaded rules, indexed by the event types they listen to.
pub struct RuleSet {
    pub rules: Vec<Arc<Rule>>,
    by_type: TypeMap<Vec<usize>>,
    pub spec: Arc<StateSpec>,
    pub engine: Arc<rhai::Engine>,
    pub limits: ScriptLimits,
    /// Message texts per offer and language that replace the rules' own (`channels/templates`).
    pub templates: Arc<templates::Templates>,
    /// The engine's time on this rule set, for the rules' time-share breakers.
    pub time: TimeWindow,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules)
            .finish()
    }
}

impl RuleSet {
    pub fn new(
        rules: Vec<Rule>,
        spec: StateSpec,
        engine: rhai::Engine,
        limits: ScriptLimits,
    ) -> Self {
        let mut by_type: TypeMap<Vec<usize>> = Default::default();
        let mut rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
        // Higher priority first, so arbitration ties keep a predictable order.
        rules.sort_by(|a, b| {
            b.meta
                .priority
                .cmp(&a.meta.priority)
                .then(a.meta.id.cmp(&b.meta.id))
        });
        for (i, r) in rules.iter().enumerate() {
            for t in &r.meta.events {
                by_type.entry(t.as_str()).push(i);
            }
        }
        RuleSet {
            rules,
            by_type,
            spec: Arc::new(spec),
            engine: Arc::new(engine),
            limits,
            templates: Arc::default(),
            time: TimeWindow::default(),
        }
    }

    pub fn empty(limits: &ScriptLimits) -> Self {
        RuleSet::new(
            Vec::new(),
            StateSpec::default(),
            sandbox::build_engine(limits),
            limits.clone(),
        )
    }

    /// Rules subscribed to an event type; never the whole set.
    pub fn for_type(&self, ty: &EventType) -> impl Iterator<Item = &Arc<Rule>> {
        self.by_type
            .get(ty)
            .into_iter()
            .flat_map(move |ix| ix.iter().map(move |i| &self.rules[*i]))
    }

    pub fn subscribes(&self, ty: &EventType) -> bool {
        self.by_type.contains(ty)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.meta.id == id)
    }
}
