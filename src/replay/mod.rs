//! `kairos replay`: the engine over an NDJSON file, on event time, deterministic, offline.
//! Decisions that would go out are `proposed`: a replay contacts no channel.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

mod read;
mod slice;

use crate::config::Config;
use crate::decision::Policy;
use crate::engine::MatchSettings;
use crate::event::Msisdn;
use crate::ports::{Profile, Status};
use crate::rules::RuleSet;
use read::{decode_lines, Block, Reader, Rejections};
use slice::{Lines, Numbered, Slice};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuleSummary {
    pub matched: u64,
    pub proposed: u64,
    pub suppressed: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub events: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub late: u64,
    pub unknown_type: u64,
    pub rule_errors: u64,
    /// Rules quarantined during the replay, in the order they tripped, with the last error.
    pub quarantined: Vec<(String, String)>,
    pub recommendations: u64,
    pub per_rule: BTreeMap<String, RuleSummary>,
    /// First few rejections, with their line numbers.
    pub first_rejections: Vec<String>,
    pub avg_state_bytes: usize,
    pub subscribers: usize,
}

/// Replays `input` on `workers` cores: subscribers are partitioned by msisdn as the live
/// engine partitions them, each slice runs its events in input order, and the decisions are
/// written in input order, so the output is byte for byte the one-core output. Two things
/// are shared across subscribers and so run on one core: channel capacity (`[capacity]`,
/// counted in decision order) - and a rule quarantined mid-replay may trip at a different
/// event than on one core (its failures are counted across slices as they come).
pub fn replay_on(
    rules: &RuleSet,
    config: &Config,
    input: impl BufRead,
    out: impl Write,
    profiles: HashMap<Msisdn, Arc<Profile>>,
    progress: impl FnMut(u64),
    workers: usize,
) -> anyhow::Result<Summary> {
    // The contact policy of the rules folder, as the rules it holds.
    let policy = Policy::from_config(config).map_err(anyhow::Error::msg)?;
    replay_with(
        rules, policy, config, input, out, profiles, progress, workers, None,
    )
}

/// [`replay_on`] with the contact policy given (a published or draft set carries its own
/// `policy.toml`; backtests run it so), adding each event run to `processed` (`progress`
/// is told bytes read, which run ahead of the events by a chunk or two).
#[allow(clippy::too_many_arguments)]
pub fn replay_with(
    rules: &RuleSet,
    mut policy: Policy,
    config: &Config,
    input: impl BufRead,
    mut out: impl Write,
    profiles: HashMap<Msisdn, Arc<Profile>>,
    mut progress: impl FnMut(u64),
    workers: usize,
    processed: Option<&AtomicU64>,
) -> anyhow::Result<Summary> {
    let settings = MatchSettings::from_config(&config.engine).map_err(anyhow::Error::msg)?;
    policy.go_status = Status::Proposed;
    // No CRM here: every number is decided for, as the rules alone would.
    policy.market_unknown = true;
    let default_profile = Arc::new(Profile {
        home_country: config.engine.home_country.clone().into(),
        timezone: config.engine.default_timezone.clone().into(),
        ..Profile::default()
    });
    let workers = if policy.contact.capacity.is_empty() {
        workers.max(1)
    } else {
        1
    };
    let mut reader = Reader::new(input);
    let mut parts: Vec<Vec<(Msisdn, Arc<Profile>)>> = vec![Vec::new(); workers];
    for (m, p) in profiles {
        parts[m.shard(workers)].push((m, p));
    }
    let slices = if workers == 1 {
        let mut slice = Slice::new(
            rules,
            &settings,
            &policy,
            default_profile,
            parts.pop().unwrap_or_default(),
            processed,
        );
        let mut block = Block::default();
        let mut events = Vec::new();
        let mut rejections = Rejections::default();
        let mut lines = Vec::new();
        while !reader.done {
            reader.fill(&mut block, 1, &mut progress)?;
            events.clear();
            decode_lines(&block.bytes, &block.lines[0], &mut events, &mut rejections)?;
            lines.clear();
            slice.run(&events, &mut lines);
            for (_, l) in &lines {
                out.write_all(l)?;
            }
        }
        vec![(slice.summary.clone(), slice.state(), rejections)]
    } else {
        parallel(
            (rules, &settings, &policy, &default_profile, processed),
            &mut reader,
            &mut out,
            parts,
            &mut progress,
        )?
    };
    progress(reader.bytes);
    out.flush()?;
    let mut s = Summary {
        events: reader.events,
        ..Summary::default()
    };
    let mut rejected = reader.rejections;
    let mut held = 0usize;
    let mut bytes = 0usize;
    for (part, (subscribers, state_bytes), r) in slices {
        s.add(part);
        rejected.merge(r);
        held += subscribers;
        bytes += state_bytes;
    }
    s.rejected = rejected.count;
    s.first_rejections = rejected.first.into_iter().map(|(_, l)| l).collect();
    s.subscribers = held;
    s.avg_state_bytes = bytes.checked_div(held).unwrap_or(0);
    Ok(s)
}

type Engine<'a> = (
    &'a RuleSet,
    &'a MatchSettings,
    &'a Policy,
    &'a Arc<Profile>,
    Option<&'a AtomicU64>,
);

/// What a slice hands back: its counts, its state (subscribers, bytes) and its rejections.
type Done = (Summary, (usize, usize), Rejections);

/// One thread per slice; the reader splits each block of lines by subscriber, each slice
/// decodes and runs its own, and the reader merges the slices' output back into input
/// order. Two blocks are in flight, so the slices work while the reader reads the next one
/// and writes the last.
fn parallel<R: BufRead>(
    (rules, settings, policy, default_profile, processed): Engine<'_>,
    reader: &mut Reader<R>,
    out: &mut impl Write,
    parts: Vec<Vec<(Msisdn, Arc<Profile>)>>,
    progress: &mut impl FnMut(u64),
) -> anyhow::Result<Vec<Done>> {
    use std::sync::mpsc::sync_channel;
    let workers = parts.len();
    let stopped = || anyhow::anyhow!("a replay worker stopped");
    std::thread::scope(|scope| {
        let mut to = Vec::new();
        let mut from = Vec::new();
        let mut handles = Vec::new();
        for (i, profiles) in parts.into_iter().enumerate() {
            let (tx_in, rx_in) = sync_channel::<Arc<Block>>(2);
            let (tx_out, rx_out) = sync_channel::<std::io::Result<Vec<Lines>>>(2);
            let default_profile = default_profile.clone();
            handles.push(scope.spawn(move || {
                let mut slice = Slice::new(
                    rules,
                    settings,
                    policy,
                    default_profile,
                    profiles,
                    processed,
                );
                let mut events: Vec<Numbered> = Vec::new();
                let mut rejections = Rejections::default();
                for block in rx_in {
                    events.clear();
                    let decoded =
                        decode_lines(&block.bytes, &block.lines[i], &mut events, &mut rejections);
                    // The reader reuses the block once every slice has let it go.
                    drop(block);
                    let ran = decoded.map(|()| {
                        let mut lines = Vec::new();
                        slice.run(&events, &mut lines);
                        lines
                    });
                    if tx_out.send(ran).is_err() {
                        break;
                    }
                }
                (slice.summary.clone(), slice.state(), rejections)
            }));
            to.push(tx_in);
            from.push(rx_out);
        }
        let mut in_flight = std::collections::VecDeque::new();
        let mut spare: Vec<Block> = Vec::new();
        let mut merged: Vec<Lines> = Vec::new();
        loop {
            if !reader.done {
                let mut block = spare.pop().unwrap_or_default();
                reader.fill(&mut block, workers, progress)?;
                let block = Arc::new(block);
                for tx in &to {
                    tx.send(block.clone()).map_err(|_| stopped())?;
                }
                in_flight.push_back(block);
                if in_flight.len() < 2 && !reader.done {
                    continue;
                }
            }
            let Some(block) = in_flight.pop_front() else {
                break;
            };
            merged.clear();
            for rx in &from {
                merged.extend(rx.recv().map_err(|_| stopped())??);
            }
            spare.extend(Arc::into_inner(block));
            // Each slice's output is in input order; together they are put back in it.
            merged.sort_unstable_by_key(|(n, _)| *n);
            for (_, l) in &merged {
                out.write_all(l)?;
            }
        }
        drop(to);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a replay worker panicked"))
            })
            .collect()
    })
}

impl Summary {
    /// Adds what a slice counted.
    fn add(&mut self, o: Summary) {
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.unknown_type += o.unknown_type;
        self.rule_errors += o.rule_errors;
        self.recommendations += o.recommendations;
        for q in o.quarantined {
            if !self.quarantined.iter().any(|(id, _)| *id == q.0) {
                self.quarantined.push(q);
            }
        }
        for (id, r) in o.per_rule {
            let e = self.per_rule.entry(id).or_default();
            e.matched += r.matched;
            e.proposed += r.proposed;
            for (k, v) in r.suppressed {
                *e.suppressed.entry(k).or_default() += v;
            }
        }
    }
}

/// Reads `{"msisdn": "...", ...profile fields}` lines.
pub fn read_profiles(
    path: &Path,
    config: &Config,
) -> anyhow::Result<HashMap<Msisdn, Arc<Profile>>> {
    let f = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for (n, line) in BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        let m = v
            .get("msisdn")
            .and_then(|m| m.as_str())
            .ok_or_else(|| anyhow::anyhow!("{}:{}: msisdn is required", path.display(), n + 1))?;
        let msisdn = Msisdn::parse(m)
            .map_err(|e| anyhow::anyhow!("{}:{}: msisdn: {e}", path.display(), n + 1))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("msisdn");
            o.entry("known").or_insert(true.into());
            o.entry("home_country")
                .or_insert(config.engine.home_country.clone().into());
        }
        let p: Profile = serde_json::from_value(v)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        out.insert(msisdn, Arc::new(p));
    }
    Ok(out)
}

pub fn run_cli(
    config: &Config,
    events: &Path,
    rules_dir: Option<&Path>,
    out: Option<&Path>,
    profiles: Option<&Path>,
    workers: usize,
) -> anyhow::Result<ExitCode> {
    // The rules folder's contact policy comes with it.
    let mut config = config.clone();
    if let Some(d) = rules_dir {
        config.engine.rules_dir = d.to_path_buf();
    }
    let config = &config;
    let dir = &config.engine.rules_dir;
    let rules = match crate::rules::load_all(
        dir,
        &config.channels.templates_dir(),
        crate::rules::templates::Offers::MayBeElsewhere,
        &config.engine.limits,
        &config.channels.enabled,
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let profiles = match profiles {
        Some(p) => read_profiles(p, config)?,
        None => HashMap::new(),
    };
    let file =
        std::fs::File::open(events).map_err(|e| anyhow::anyhow!("{}: {e}", events.display()))?;
    let total = file.metadata()?.len();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    // Only at a terminal: piped or redirected, stderr keeps just the summary.
    if total < 8 * 1024 * 1024 || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let input = BufReader::with_capacity(1 << 20, file);
    let out: Box<dyn Write> = match out {
        Some(p) => {
            let f =
                std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Box::new(std::io::BufWriter::new(f))
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let summary = replay_on(
        &rules,
        config,
        input,
        out,
        profiles,
        |b| bar.set_position(b),
        workers,
    )?;
    bar.finish_and_clear();
    print_summary(&summary, started.elapsed());
    Ok(ExitCode::SUCCESS)
}

fn print_summary(s: &Summary, took: std::time::Duration) {
    let rate = s.events as f64 / took.as_secs_f64().max(1e-9);
    eprintln!(
        "replayed {} events in {:.2}s ({:.0}/s): {} recommendations, {} rejected, {} duplicates, {} late, {} unknown type, {} rule errors",
        s.events, took.as_secs_f64(), rate, s.recommendations, s.rejected, s.duplicates, s.late, s.unknown_type, s.rule_errors
    );
    for r in &s.first_rejections {
        eprintln!("  rejected {r}");
    }
    for (id, why) in &s.quarantined {
        eprintln!("  quarantined {id}: {why}");
    }
    eprintln!(
        "{:<28} {:>8} {:>9}  suppressed",
        "rule", "matched", "proposed"
    );
    for (id, r) in &s.per_rule {
        let sup: Vec<String> = r
            .suppressed
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!(
            "{:<28} {:>8} {:>9}  {}",
            id,
            r.matched,
            r.proposed,
            sup.join(" ")
        );
    }
    eprintln!(
        "{} subscribers, ~{} bytes of state each",
        s.subscribers, s.avg_state_bytes
    );
}
