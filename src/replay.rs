//! `kairos replay`: the engine over an NDJSON file, on event time, deterministic, offline.
//! Decisions that would go out are `proposed`: a replay contacts no channel.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::decision::Policy;
use crate::engine::{MatchSettings, Shard, Skip, WARM_GROUP};
use crate::event::{decode_str, Event, Msisdn};
use crate::ports::{Profile, Recommendation, Status};
use crate::rules::RuleSet;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuleSummary {
    pub matched: u64,
    pub proposed: u64,
    pub suppressed: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
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

/// Replays `input`, writing every recommendation to `out` as NDJSON.
pub fn replay(
    rules: &RuleSet,
    config: &Config,
    input: impl BufRead,
    mut out: impl Write,
    profiles: HashMap<Msisdn, Arc<Profile>>,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<Summary> {
    let settings = MatchSettings::from_config(&config.engine).map_err(anyhow::Error::msg)?;
    let mut policy = Policy::from_config(config).map_err(anyhow::Error::msg)?;
    policy.go_status = Status::Proposed;
    let default_profile = Arc::new(Profile {
        home_country: config.engine.home_country.clone().into(),
        timezone: config.engine.default_timezone.clone().into(),
        ..Profile::default()
    });
    let mut shard = Shard::default();
    for (m, p) in profiles {
        shard.insert(m, Default::default(), p);
    }
    let mut s = Summary::default();
    let mut recs: Vec<Recommendation> = Vec::new();
    let mut failures = Vec::new();
    let mut bytes = 0u64;
    // Offers waiting for their arbitration window, by id: a better offer before it closes
    // replaces one, and the replaced one is written again (a later line with the same id
    // supersedes the earlier).
    let mut waiting: HashMap<String, Recommendation> = HashMap::new();
    let mut lines = input.lines().enumerate();
    let mut group: Vec<Arc<Event>> = Vec::with_capacity(WARM_GROUP);
    let mut done = false;
    while !done {
        // Decode a group ahead, so the state of its subscribers can be fetched together.
        group.clear();
        while group.len() < WARM_GROUP {
            let Some((n, line)) = lines.next() else {
                done = true;
                break;
            };
            let line = line?;
            bytes += line.len() as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            s.events += 1;
            match decode_str(&line) {
                Ok(e) => group.push(Arc::new(e)),
                Err(e) => {
                    s.rejected += 1;
                    if s.first_rejections.len() < 10 {
                        s.first_rejections.push(format!("line {}: {e}", n + 1));
                    }
                }
            }
            if s.events % 65536 == 0 {
                progress(bytes);
            }
        }
        shard.warm(group.iter().map(|e| &e.msisdn));
        for ev in &group {
            recs.clear();
            failures.clear();
            match shard.process(
                rules,
                &settings,
                &policy,
                &default_profile,
                ev,
                &mut recs,
                &mut failures,
            ) {
                Ok(()) => {}
                Err(Skip::Duplicate) => s.duplicates += 1,
                Err(Skip::Late { .. }) => s.late += 1,
                Err(Skip::UnknownType) => s.unknown_type += 1,
            }
            s.rule_errors += failures.len() as u64;
            s.quarantined.extend(
                failures
                    .iter()
                    .filter(|f| f.quarantined)
                    .map(|f| (f.rule_id.clone(), f.message.clone())),
            );
            for v in shard.revoked.drain(..) {
                let Some(mut r) = waiting.remove(&v.id) else {
                    continue;
                };
                r.status = Status::Suppressed;
                r.reason = Some("lost_arbitration".into());
                r.not_before = None;
                if let Some(e) = r.explanation.as_mut() {
                    e.winner = Some(v.winner);
                }
                let e = s.per_rule.entry(r.rule_id.clone()).or_default();
                e.proposed = e.proposed.saturating_sub(1);
                *e.suppressed.entry("lost_arbitration".into()).or_default() += 1;
                serde_json::to_writer(&mut out, &r)?;
                out.write_all(b"\n")?;
            }
            if waiting.len() > 100_000 {
                // Windows are minutes long: what closed before this event is settled.
                waiting.retain(|_, r| r.not_before.is_none_or(|t| t > ev.ts));
            }
            for r in &recs {
                if r.reason.as_deref() == Some("arbitration_window") {
                    waiting.insert(r.id.clone(), r.clone());
                }
                let e = s.per_rule.entry(r.rule_id.clone()).or_default();
                e.matched += 1;
                match (&r.status, &r.reason) {
                    (Status::Suppressed, Some(reason)) => {
                        *e.suppressed.entry(reason.clone()).or_default() += 1
                    }
                    _ => e.proposed += 1,
                }
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
                s.recommendations += 1;
            }
        }
    }
    progress(bytes);
    out.flush()?;
    s.avg_state_bytes = shard.avg_state_bytes();
    s.subscribers = shard.entries.len();
    Ok(s)
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
) -> anyhow::Result<ExitCode> {
    let dir = rules_dir.unwrap_or(&config.engine.rules_dir);
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
    if total < 8 * 1024 * 1024 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let input = BufReader::with_capacity(1 << 20, file);
    let summary = match out {
        Some(p) => {
            let f =
                std::fs::File::create(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            replay(
                &rules,
                config,
                input,
                std::io::BufWriter::new(f),
                profiles,
                |b| bar.set_position(b),
            )?
        }
        None => replay(
            &rules,
            config,
            input,
            std::io::stdout().lock(),
            profiles,
            |b| bar.set_position(b),
        )?,
    };
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
