//! A backtest's run, with no database or HTTP in it: the tested set and the published set
//! over the same events on the replay engine (`replay::replay_with`, which spreads
//! subscribers over several cores), the decisions tallied, and the two compared.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::authoring::check::Compiled;
use crate::config::Config;
use crate::decision::propensity::Model;
use crate::decision::Policy;
use crate::ports::Status;
use crate::replay::Summary;

/// Where the expected acceptances come from.
pub enum Rates {
    /// The running policy learns (`[propensity] learn`): its model's mean per offer over every
    /// segment, on its uniform prior (an offer nobody answered yet counts 0.5).
    Learned(Arc<Model>),
    /// Otherwise the offer's acceptance rate in the stored answers (accepted over accepted,
    /// declined and expired); an offer nobody answered yet counts nothing.
    History(HashMap<String, (u64, u64)>),
}

impl Rates {
    pub fn source(&self) -> &'static str {
        match self {
            Rates::Learned(_) => "learned_propensity",
            Rates::History(_) => "answer_history",
        }
    }

    /// The acceptance rate of `offer_code`, and whether any answer stands behind it.
    fn rate(&self, offer_code: &str) -> (f64, bool) {
        let (yes, no) = match self {
            Rates::Learned(m) => m.offer_answers(offer_code),
            Rates::History(h) => h.get(offer_code).copied().unwrap_or_default(),
        };
        let answered = yes + no > 0;
        let rate = match self {
            Rates::Learned(_) => (1 + yes) as f64 / (2 + yes + no) as f64,
            Rates::History(_) if answered => yes as f64 / (yes + no) as f64,
            Rates::History(_) => 0.0,
        };
        (rate, answered)
    }
}

/// Events in an NDJSON file: its lines that are not blank, as the replay counts them.
/// Lines are found with `memchr` (a byte at a time took 1.2-1.5 s for 10M events, 2 GB, before
/// the replay could start) and a line's content is usually its first byte.
pub fn count_events(bytes: &[u8]) -> u64 {
    let mut n = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len())) {
        n += u64::from(bytes[start..end].iter().any(|b| !b.is_ascii_whitespace()));
        start = end + 1;
    }
    n
}

/// One decision line of the replay's output, as far as the tally reads it.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    rule_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    offer_code: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    status: Status,
    #[serde(borrow, default)]
    reason: Option<std::borrow::Cow<'a, str>>,
}

/// Counts the offers in the replay's output as it is written: by channel, and by rule and
/// offer code. An offer waiting for its arbitration window may be written again later under
/// the same id, beaten: the later line replaces the earlier.
#[derive(Default)]
struct Tally {
    partial: Vec<u8>,
    channels: BTreeMap<String, u64>,
    offers: BTreeMap<(String, String), u64>,
    /// Offers that may still be replaced: id -> (rule, offer code, channel).
    waiting: HashMap<String, (String, String, String)>,
    bad_lines: u64,
}

impl Tally {
    fn line(&mut self, bytes: &[u8]) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(l) = serde_json::from_slice::<Line>(bytes) else {
            self.bad_lines += 1;
            return;
        };
        if let Some((rule, code, channel)) = self.waiting.remove(l.id.as_ref()) {
            for n in [
                self.channels.get_mut(&channel),
                self.offers.get_mut(&(rule, code)),
            ]
            .into_iter()
            .flatten()
            {
                *n = n.saturating_sub(1);
            }
        }
        if l.status == Status::Suppressed {
            return;
        }
        *self.channels.entry(l.channel.to_string()).or_default() += 1;
        *self
            .offers
            .entry((l.rule_id.to_string(), l.offer_code.to_string()))
            .or_default() += 1;
        if l.reason.as_deref() == Some("arbitration_window") {
            self.waiting.insert(
                l.id.into_owned(),
                (
                    l.rule_id.into_owned(),
                    l.offer_code.into_owned(),
                    l.channel.into_owned(),
                ),
            );
        }
    }
}

impl Write for Tally {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
            let whole: Vec<u8> = self.partial.drain(..=end).collect();
            for l in whole.split(|b| *b == b'\n') {
                self.line(l);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.partial);
        self.line(&rest);
        Ok(())
    }
}

/// What one set did over the events.
struct Run {
    summary: Summary,
    rules: Vec<String>,
    tally: Tally,
}

fn run_one(
    set: Compiled,
    config: &Config,
    events: &[u8],
    workers: usize,
    done: &AtomicU64,
) -> anyhow::Result<Run> {
    let policy = Policy::with_contact(config, set.contact).map_err(anyhow::Error::msg)?;
    let mut tally = Tally::default();
    let summary = crate::replay::replay_with(
        &set.rules,
        policy,
        config,
        events,
        &mut tally,
        HashMap::new(),
        |_| {},
        workers,
        Some(done),
    )?;
    let rules = set.rules.rules.iter().map(|r| r.meta.id.clone()).collect();
    Ok(Run {
        summary,
        rules,
        tally,
    })
}

/// The tested set and the published one (`None`: the same files, run once).
pub struct Sets {
    pub tested: Compiled,
    pub published: Option<Compiled>,
    pub published_version: i64,
}

/// Runs the sets over `events` one after the other, adding each event run to `done`.
pub fn run(
    sets: Sets,
    config: &Config,
    events: &[u8],
    workers: usize,
    rates: &Rates,
    done: &AtomicU64,
) -> anyhow::Result<BacktestResult> {
    let total = count_events(events);
    let tested = run_one(sets.tested, config, events, workers, done)?;
    // Lines that did not decode never reach the engine: the run is through all the same.
    done.store(total, Ordering::Relaxed);
    let published = match sets.published {
        Some(p) => {
            let r = run_one(p, config, events, workers, done)?;
            done.store(2 * total, Ordering::Relaxed);
            Some(r)
        }
        None => None,
    };
    let published = published.as_ref().unwrap_or(&tested);
    Ok(result(&tested, published, sets.published_version, rates))
}

/// Hits, offers and suppressions of one rule of the tested set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleResult {
    pub rule_id: String,
    /// Decisions the rule made (its condition held and it proposed an offer).
    pub matched: u64,
    /// Of those, offers that would go out.
    pub offers: u64,
    /// Of those, the ones held back, by reason (`cooldown`, `daily_cap`, ...).
    pub suppressed: BTreeMap<String, u64>,
    /// Offers that would go out times each offer's acceptance rate.
    pub expected_acceptances: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Acceptances {
    pub total: f64,
    /// `learned_propensity` (the running policy learns: its model's mean per offer, on a
    /// uniform prior) or `answer_history` (the offer's acceptance rate in the stored
    /// answers; an offer nobody answered counts nothing).
    pub source: String,
    /// Offers whose offer code has no answers yet.
    pub offers_without_history: u64,
}

/// Matched and offers of one rule under one set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Side {
    pub matched: u64,
    pub offers: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delta {
    pub matched: i64,
    pub offers: i64,
}

/// One rule under the tested set and under the published one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleDiff {
    pub rule_id: String,
    /// `added` (only in the tested set), `removed` (only in the published one) or `kept`.
    pub change: String,
    pub tested: Side,
    pub published: Side,
    /// Tested minus published.
    pub delta: Delta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Diff {
    /// The published version compared with.
    pub published_version: i64,
    pub rules: Vec<RuleDiff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quarantined {
    pub rule_id: String,
    pub error: String,
}

/// What the tested set did over the events, and how that differs from the published set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BacktestResult {
    /// Event lines read; `rejected` of them did not decode (the first few are in
    /// `first_rejections`), `duplicates` and `late` ones changed nothing.
    pub events: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub late: u64,
    pub unknown_type: u64,
    pub rule_errors: u64,
    pub first_rejections: Vec<String>,
    pub quarantined: Vec<Quarantined>,
    /// Per rule of the tested set, by id.
    pub rules: Vec<RuleResult>,
    /// Offers that would go out, in all and by channel.
    pub offers: u64,
    pub offers_per_channel: BTreeMap<String, u64>,
    /// Decisions held back, by reason, over every rule.
    pub suppressed: BTreeMap<String, u64>,
    pub expected_acceptances: Acceptances,
    pub diff: Diff,
}

fn side(r: &Run, id: &str) -> Side {
    r.summary
        .per_rule
        .get(id)
        .map(|s| Side {
            matched: s.matched,
            offers: s.proposed,
        })
        .unwrap_or_default()
}

/// Three decimals: expected acceptances are estimates.
fn rounded(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn result(tested: &Run, published: &Run, published_version: i64, rates: &Rates) -> BacktestResult {
    let s = &tested.summary;
    let mut expected: BTreeMap<&str, f64> = BTreeMap::new();
    let mut without_history = 0;
    for ((rule, code), n) in &tested.tally.offers {
        let (rate, answered) = rates.rate(code);
        *expected.entry(rule.as_str()).or_default() += rate * *n as f64;
        if !answered {
            without_history += n;
        }
    }
    let ids: BTreeSet<&str> = tested
        .rules
        .iter()
        .map(String::as_str)
        .chain(s.per_rule.keys().map(String::as_str))
        .collect();
    let rules: Vec<RuleResult> = ids
        .iter()
        .map(|id| {
            let r = s.per_rule.get(*id).cloned().unwrap_or_default();
            RuleResult {
                rule_id: id.to_string(),
                matched: r.matched,
                offers: r.proposed,
                suppressed: r.suppressed,
                expected_acceptances: rounded(expected.get(id).copied().unwrap_or_default()),
            }
        })
        .collect();
    let mut suppressed: BTreeMap<String, u64> = BTreeMap::new();
    for r in s.per_rule.values() {
        for (k, v) in &r.suppressed {
            *suppressed.entry(k.clone()).or_default() += v;
        }
    }
    let all: BTreeSet<&str> = ids
        .iter()
        .copied()
        .chain(published.rules.iter().map(String::as_str))
        .chain(published.summary.per_rule.keys().map(String::as_str))
        .collect();
    let diff = all
        .into_iter()
        .map(|id| {
            let (t, p) = (side(tested, id), side(published, id));
            let in_tested = tested.rules.iter().any(|r| r == id);
            let in_published = published.rules.iter().any(|r| r == id);
            RuleDiff {
                rule_id: id.to_string(),
                change: match (in_tested, in_published) {
                    (true, false) => "added",
                    (false, true) => "removed",
                    _ => "kept",
                }
                .to_string(),
                tested: t,
                published: p,
                delta: Delta {
                    matched: t.matched as i64 - p.matched as i64,
                    offers: t.offers as i64 - p.offers as i64,
                },
            }
        })
        .collect();
    BacktestResult {
        events: s.events,
        rejected: s.rejected,
        duplicates: s.duplicates,
        late: s.late,
        unknown_type: s.unknown_type,
        rule_errors: s.rule_errors,
        first_rejections: s.first_rejections.clone(),
        quarantined: s
            .quarantined
            .iter()
            .map(|(rule_id, error)| Quarantined {
                rule_id: rule_id.clone(),
                error: error.clone(),
            })
            .collect(),
        offers: rules.iter().map(|r| r.offers).sum(),
        rules,
        offers_per_channel: tested
            .tally
            .channels
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        suppressed,
        expected_acceptances: Acceptances {
            total: rounded(expected.values().sum()),
            source: rates.source().to_string(),
            offers_without_history: without_history,
        },
        diff: Diff {
            published_version,
            rules: diff,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_the_lines_that_are_not_blank() {
        assert_eq!(count_events(b""), 0);
        assert_eq!(count_events(b"{}\n\n  \n{}\n{}"), 3);
        assert_eq!(count_events(b"{}\n{}\n"), 2);
        assert_eq!(count_events(b" \t\r\n{}\r\n\n\n  {} \n \n"), 2);
        assert_eq!(count_events(b"\n"), 0);
        assert_eq!(count_events(b"x"), 1);
    }

    fn rec(id: &str, rule: &str, channel: &str, status: &str, reason: Option<&str>) -> String {
        serde_json::json!({"id": id, "rule_id": rule, "offer_code": "O", "channel": channel,
            "status": status, "reason": reason})
        .to_string()
            + "\n"
    }

    #[test]
    fn a_beaten_offer_written_again_is_counted_once_as_suppressed() {
        let mut t = Tally::default();
        let out = [
            rec("1", "a", "sms", "proposed", Some("arbitration_window")),
            rec("2", "b", "portal", "proposed", None),
            rec("3", "b", "sms", "suppressed", Some("cooldown")),
            rec("1", "a", "sms", "suppressed", Some("lost_arbitration")),
        ]
        .concat();
        // Written in odd pieces, as a buffered writer may.
        let (x, y) = out.as_bytes().split_at(30);
        t.write_all(x).unwrap();
        t.write_all(y).unwrap();
        t.flush().unwrap();
        assert_eq!(
            t.channels,
            BTreeMap::from([("portal".to_string(), 1), ("sms".to_string(), 0)])
        );
        assert_eq!(t.offers[&("b".to_string(), "O".to_string())], 1);
        assert_eq!(t.offers[&("a".to_string(), "O".to_string())], 0);
        assert_eq!(t.bad_lines, 0);
    }

    fn run_of(rules: &[&str], counts: &[(&str, u64, u64)], offers: &[(&str, &str, u64)]) -> Run {
        let mut summary = Summary::default();
        for (id, matched, proposed) in counts {
            summary.per_rule.insert(
                id.to_string(),
                crate::replay::RuleSummary {
                    matched: *matched,
                    proposed: *proposed,
                    suppressed: BTreeMap::from([("cooldown".to_string(), matched - proposed)]),
                },
            );
        }
        let mut tally = Tally::default();
        for (rule, code, n) in offers {
            tally
                .offers
                .insert((rule.to_string(), code.to_string()), *n);
            *tally.channels.entry("sms".into()).or_default() += n;
        }
        Run {
            summary,
            rules: rules.iter().map(|r| r.to_string()).collect(),
            tally,
        }
    }

    #[test]
    fn the_comparison_names_rules_added_removed_and_kept() {
        let tested = run_of(
            &["a", "new"],
            &[("a", 5, 3), ("new", 2, 2)],
            &[("a", "A", 3), ("new", "N", 2)],
        );
        let published = run_of(&["a", "old"], &[("a", 5, 4), ("old", 1, 1)], &[]);
        let rates = Rates::History(HashMap::from([("N".to_string(), (1, 3))]));
        let r = result(&tested, &published, 7, &rates);
        let by = |id: &str| {
            r.diff
                .rules
                .iter()
                .find(|d| d.rule_id == id)
                .unwrap()
                .clone()
        };
        assert_eq!(
            (by("a").change.as_str(), by("a").delta),
            (
                "kept",
                Delta {
                    matched: 0,
                    offers: -1
                }
            )
        );
        assert_eq!(
            (
                by("new").change.as_str(),
                by("new").published,
                by("new").delta
            ),
            (
                "added",
                Side::default(),
                Delta {
                    matched: 2,
                    offers: 2
                }
            )
        );
        assert_eq!(
            (by("old").change.as_str(), by("old").tested, by("old").delta),
            (
                "removed",
                Side::default(),
                Delta {
                    matched: -1,
                    offers: -1
                }
            )
        );
        assert_eq!(r.diff.published_version, 7);
        // The tested set's own view: its rules only, suppressions summed over them.
        assert_eq!(
            r.rules
                .iter()
                .map(|x| x.rule_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "new"]
        );
        assert_eq!(r.suppressed, BTreeMap::from([("cooldown".to_string(), 2)]));
        assert_eq!((r.offers, r.offers_per_channel["sms"]), (5, 5));
        // N is taken one time in four; A has no answers.
        assert_eq!(r.expected_acceptances.total, 0.5);
        assert_eq!(r.expected_acceptances.offers_without_history, 3);
        assert_eq!(r.expected_acceptances.source, "answer_history");
    }

    #[test]
    fn rates_come_from_the_model_or_from_the_answers() {
        let m = Model::from_counts([("O".to_string(), "gold".to_string(), 3, 1)]);
        let learned = Rates::Learned(Arc::new(m));
        assert_eq!(learned.rate("O"), (4.0 / 6.0, true));
        assert_eq!(learned.rate("NEW"), (0.5, false), "the prior");
        let history = Rates::History(HashMap::from([("O".to_string(), (3, 1))]));
        assert_eq!(history.rate("O"), (0.75, true));
        assert_eq!(history.rate("NEW"), (0.0, false));
    }
}
