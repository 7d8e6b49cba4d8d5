//! `kairos replay`: the engine over an NDJSON file, on event time, deterministic, offline.
//! Decisions that would go out are `proposed`: a replay contacts no channel.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

mod slice;

use crate::config::Config;
use crate::decision::Policy;
use crate::engine::MatchSettings;
use crate::event::{decode_str, Msisdn};
use crate::ports::{Profile, Status};
use crate::rules::RuleSet;
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

/// Events read and handed to the slices at a time.
const CHUNK: usize = 32_768;

/// Reads the input a chunk at a time: decoded events numbered by line, rejections counted.
struct Reader<R> {
    lines: std::iter::Enumerate<std::io::Lines<R>>,
    bytes: u64,
    done: bool,
    s: Summary,
}

impl<R: BufRead> Reader<R> {
    fn chunk(&mut self, progress: &mut impl FnMut(u64)) -> anyhow::Result<Vec<Numbered>> {
        let mut out = Vec::with_capacity(CHUNK);
        while out.len() < CHUNK {
            let Some((n, line)) = self.lines.next() else {
                self.done = true;
                break;
            };
            let line = line?;
            self.bytes += line.len() as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            self.s.events += 1;
            match decode_str(&line) {
                Ok(e) => out.push((n as u64, Arc::new(e))),
                Err(e) => {
                    self.s.rejected += 1;
                    if self.s.first_rejections.len() < 10 {
                        self.s.first_rejections.push(format!("line {}: {e}", n + 1));
                    }
                }
            }
            if self.s.events.is_multiple_of(65536) {
                progress(self.bytes);
            }
        }
        Ok(out)
    }
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
    let mut reader = Reader {
        lines: input.lines().enumerate(),
        bytes: 0,
        done: false,
        s: Summary::default(),
    };
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
        let mut lines = Vec::new();
        while !reader.done {
            let chunk = reader.chunk(&mut progress)?;
            lines.clear();
            slice.run(&chunk, &mut lines);
            for (_, l) in &lines {
                out.write_all(l)?;
            }
        }
        vec![(slice.summary.clone(), slice.state())]
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
    let mut s = reader.s;
    let mut held = 0usize;
    let mut bytes = 0usize;
    for (part, (subscribers, state_bytes)) in slices {
        s.add(part);
        held += subscribers;
        bytes += state_bytes;
    }
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

/// One thread per slice; the reader splits each chunk by subscriber and merges the slices'
/// output back into input order. Two chunks are in flight, so the slices work while the
/// reader decodes the next one and writes the last.
fn parallel<R: BufRead>(
    (rules, settings, policy, default_profile, processed): Engine<'_>,
    reader: &mut Reader<R>,
    out: &mut impl Write,
    parts: Vec<Vec<(Msisdn, Arc<Profile>)>>,
    progress: &mut impl FnMut(u64),
) -> anyhow::Result<Vec<(Summary, (usize, usize))>> {
    use std::sync::mpsc::sync_channel;
    let workers = parts.len();
    std::thread::scope(|scope| {
        let mut to = Vec::new();
        let mut from = Vec::new();
        let mut handles = Vec::new();
        for profiles in parts {
            let (tx_in, rx_in) = sync_channel::<Vec<Numbered>>(2);
            let (tx_out, rx_out) = sync_channel::<(Vec<Lines>, Vec<Numbered>)>(2);
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
                for chunk in rx_in {
                    let mut lines = Vec::new();
                    slice.run(&chunk, &mut lines);
                    // The events go back to be freed by the reader that allocated them: a
                    // free from another thread costs the allocator more, on both threads.
                    if tx_out.send((lines, chunk)).is_err() {
                        break;
                    }
                }
                (slice.summary.clone(), slice.state())
            }));
            to.push(tx_in);
            from.push(rx_out);
        }
        let split = |chunk: Vec<Numbered>| {
            let mut by: Vec<Vec<Numbered>> = vec![Vec::new(); workers];
            for e in chunk {
                by[e.1.msisdn.shard(workers)].push(e);
            }
            by
        };
        let send = |by: Vec<Vec<Numbered>>| -> anyhow::Result<()> {
            for (tx, part) in to.iter().zip(by) {
                tx.send(part)
                    .map_err(|_| anyhow::anyhow!("a replay worker stopped"))?;
            }
            Ok(())
        };
        let mut in_flight = 0usize;
        let mut merged: Vec<Lines> = Vec::new();
        loop {
            if !reader.done {
                let chunk = reader.chunk(progress)?;
                send(split(chunk))?;
                in_flight += 1;
                if in_flight < 2 && !reader.done {
                    continue;
                }
            }
            if in_flight == 0 {
                break;
            }
            merged.clear();
            for rx in &from {
                let (lines, spent) = rx
                    .recv()
                    .map_err(|_| anyhow::anyhow!("a replay worker stopped"))?;
                merged.extend(lines);
                drop(spent);
            }
            in_flight -= 1;
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
