//! The Rhai engine every rule runs in: limits on operations, depth, sizes and wall-clock
//! time; no `eval`, no modules, no file or network access; the built-in functions.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext};
use smol_str::SmolStr;

use super::facts::{profile_fact, Fact, OwnedFacts, SharedFacts, PROFILE_FIELDS};
use super::query::{parse_call, StateQuery, STATE_FUNCTIONS};
use crate::config::ScriptLimits;
use crate::event::{AttrValue, Event};
use crate::ports::Profile;

thread_local! {
    /// Wall-clock deadline of the evaluation running on this thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// State queries already parsed, by call (function and literal arguments). Scripts make
    /// the same few calls on every event, and parsing one cost more than answering it.
    static PARSED: RefCell<HashMap<u64, ParsedCall>> = RefCell::default();
}

/// A call's words (function name, then arguments) and what they parse to.
type ParsedCall = (Vec<SmolStr>, Arc<StateQuery>);

/// Distinct calls remembered per thread; a script that builds arguments on the fly cannot
/// grow the cache without bound (it starts over when full).
const PARSED_CAP: usize = 1024;

/// Runs `f` with a wall-clock budget enforced by the engine's progress callback.
pub fn with_deadline<T>(budget: Duration, f: impl FnOnce() -> T) -> T {
    DEADLINE.with(|d| d.set(Some(Instant::now() + budget)));
    let out = f();
    DEADLINE.with(|d| d.set(None));
    out
}

/// The event as a script sees it: `event.country`, `event["duration_s"]`, `event.type`.
#[derive(Clone)]
pub struct EventView(pub Arc<Event>);

/// The subscriber's CRM profile: `profile.value_tier`, `profile.home_country`, ...
#[derive(Clone)]
pub struct ProfileView(pub Arc<Profile>);

fn attr_dynamic(v: &AttrValue) -> Dynamic {
    match v {
        AttrValue::Null => Dynamic::UNIT,
        AttrValue::Bool(b) => (*b).into(),
        AttrValue::Int(i) => (*i).into(),
        AttrValue::Float(f) => (*f).into(),
        AttrValue::Str(s) => text(s),
        AttrValue::Json(j) => rhai::serde::to_dynamic(&**j).unwrap_or(Dynamic::UNIT),
    }
}

/// A script string straight from `s` (through a `String` it cost a second allocation).
fn text(s: &str) -> Dynamic {
    ImmutableString::from(s).into()
}

fn event_get(e: &mut EventView, key: &str) -> Dynamic {
    match key {
        "id" => text(&e.0.id),
        "type" => text(e.0.kind.as_str()),
        "msisdn" => e.0.msisdn.to_string().into(),
        "ts" => e.0.ts.to_rfc3339().into(),
        _ => e.0.attr(key).map(attr_dynamic).unwrap_or(Dynamic::UNIT),
    }
}

/// Runs `f` on the facts of the evaluation in progress (borrowed from the call's tag).
fn with_facts<T>(
    ctx: &NativeCallContext,
    f: impl FnOnce(&OwnedFacts) -> T,
) -> Result<T, Box<EvalAltResult>> {
    let shared = ctx
        .tag()
        .and_then(|t| t.read_lock::<SharedFacts>())
        .ok_or("state functions can only be used inside condition() and offer()")?;
    Ok(f(&shared.0))
}

fn state_call(
    ctx: &NativeCallContext,
    name: &str,
    args: &[&str],
) -> Result<Dynamic, Box<EvalAltResult>> {
    let q = parsed_call(name, args).map_err(|e| -> Box<EvalAltResult> { e.into() })?;
    with_facts(ctx, |facts| facts.facts().query(&q).to_dynamic())
}

/// [`parse_call`], remembered per thread. Errors are not kept: the rule fails either way.
fn parsed_call(name: &str, args: &[&str]) -> Result<Arc<StateQuery>, String> {
    static SEED: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);
    let mut h = SEED.build_hasher();
    name.hash(&mut h);
    args.hash(&mut h);
    let key = h.finish();
    let same = |k: &[SmolStr]| k[0] == name && k[1..].iter().eq(args.iter());
    let hit = PARSED.with(|p| {
        p.borrow()
            .get(&key)
            .filter(|(k, _)| same(k))
            .map(|(_, q)| q.clone())
    });
    if let Some(q) = hit {
        return Ok(q);
    }
    let q = Arc::new(parse_call(name, args)?);
    PARSED.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= PARSED_CAP {
            p.clear();
        }
        let k = std::iter::once(name)
            .chain(args.iter().copied())
            .map(SmolStr::new);
        p.insert(key, (k.collect(), q.clone()));
    });
    Ok(q)
}

/// Tiers in ascending value, for `tier_rank()`.
pub use crate::ports::VALUE_TIERS as TIERS;

/// Native helpers besides the state functions: (name, arguments, what it does).
pub const HELPERS: &[(&str, &str, &str)] = &[
    ("tier_rank", "tier", "position of a value tier: basic 0, standard 1, silver 2, gold 3, platinum 4, diamond 5; -1 if unknown"),
    ("local_hour", "", "hour of day (0-23) of the event in the subscriber's time zone"),
    ("money", "cents", "formats minor units as 12.34"),
    ("gb", "bytes", "bytes as gigabytes (float)"),
    ("mb", "bytes", "bytes as megabytes (float)"),
    ("minutes", "n", "n minutes in seconds"),
    ("hours", "n", "n hours in seconds"),
    ("days", "n", "n days in seconds"),
    ("country_name", "code", "English name of an ISO country code (code itself if unknown)"),
];

pub fn build_engine(limits: &ScriptLimits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .set_max_string_size(limits.max_string_bytes)
        .set_max_array_size(limits.max_array_len)
        .set_max_map_size(limits.max_map_len)
        .set_max_modules(0)
        .set_max_variables(256)
        .set_max_functions(64)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(false)
        // Rhai interns every string a script assigns, in one cache behind a lock that all
        // workers share. Event values (regions, numbers) change on every event, so the cache
        // only churned: its evictions scan all 256 entries, ~1,400 instructions a string.
        .set_max_strings_interned(0);
    engine.disable_symbol("eval");
    engine.on_progress(|ops| {
        // The clock is read every 64 operations: a run shorter than that never reads it (the
        // standard pack's runs need under 100), and expensive operations (copying a long
        // list) cannot run far past a deadline of a few milliseconds between two reads.
        if ops & 0x3f == 0 {
            let expired = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() > t));
            if expired {
                return Some("wall-clock deadline exceeded".into());
            }
        }
        None
    });
    engine.on_print(|s| tracing::info!(target: "kairos::rules::print", "{s}"));
    engine
        .on_debug(|s, src, pos| tracing::debug!(target: "kairos::rules::debug", ?src, %pos, "{s}"));

    engine
        .register_type_with_name::<EventView>("Event")
        .register_indexer_get(|e: &mut EventView, key: &str| event_get(e, key))
        .register_type_with_name::<ProfileView>("Profile")
        .register_indexer_get(|p: &mut ProfileView, key: &str| profile_fact(&p.0, key).to_dynamic())
        .register_fn("opted_out", |p: &mut ProfileView, channel: &str| {
            p.0.opt_outs.iter().any(|c| c == channel || c == "all")
        });
    register_getters(&mut engine);
    register_state_functions(&mut engine);
    register_helpers(&mut engine);
    engine
}

/// A getter per name a script is likely to read. Without one, Rhai looks for a getter,
/// builds a "property not found" error with formatted type names, and only then falls back
/// to the indexer: measured at ~3,500 instructions per `event.x`, several per rule call.
/// Names not listed (custom attributes, extra CRM fields) still work through the indexer.
fn register_getters(engine: &mut Engine) {
    let mut names: Vec<&'static str> = vec!["id", "type", "msisdn", "ts"];
    for k in crate::event::Known::ALL {
        names.extend(k.attrs().iter().map(|(name, _)| *name));
    }
    names.sort_unstable();
    names.dedup();
    for name in names {
        engine.register_get(name, move |e: &mut EventView| event_get(e, name));
    }
    for &name in PROFILE_FIELDS {
        engine.register_get(name, move |p: &mut ProfileView| {
            profile_fact(&p.0, name).to_dynamic()
        });
    }
}

fn register_state_functions(engine: &mut Engine) {
    for (name, args) in STATE_FUNCTIONS {
        let n: &'static str = name;
        match args.split(',').count() {
            1 => {
                engine.register_fn(n, move |ctx: NativeCallContext, a: &str| {
                    state_call(&ctx, n, &[a])
                });
            }
            2 => {
                engine.register_fn(n, move |ctx: NativeCallContext, a: &str, b: &str| {
                    state_call(&ctx, n, &[a, b])
                });
            }
            _ => {
                engine.register_fn(
                    n,
                    move |ctx: NativeCallContext, a: &str, b: &str, c: &str| {
                        state_call(&ctx, n, &[a, b, c])
                    },
                );
            }
        }
    }
}

fn register_helpers(engine: &mut Engine) {
    engine
        .register_fn("tier_rank", |t: &str| {
            TIERS
                .iter()
                .position(|x| x.eq_ignore_ascii_case(t))
                .map(|p| p as i64)
                .unwrap_or(-1)
        })
        .register_fn(
            "local_hour",
            |ctx: NativeCallContext| -> Result<i64, Box<EvalAltResult>> {
                with_facts(&ctx, |f| i64::from(f.local.hour))
            },
        )
        .register_fn("money", |c: i64| {
            format!("{}.{:02}", c / 100, (c % 100).abs())
        })
        .register_fn("gb", |b: i64| b as f64 / 1e9)
        .register_fn("mb", |b: i64| b as f64 / 1e6)
        .register_fn("minutes", |n: i64| n * 60)
        .register_fn("hours", |n: i64| n * 3600)
        .register_fn("days", |n: i64| n * 86400)
        .register_fn("country_name", |c: &str| -> ImmutableString {
            country_name(c).map(Into::into).unwrap_or_else(|| c.into())
        });
}

/// The country's name in the subscriber's language (Chinese for `zh`, English otherwise).
pub fn country_name_in(code: &str, language: &str) -> Option<&'static str> {
    if !language.starts_with("zh") {
        return country_name(code);
    }
    Some(match code.to_ascii_uppercase().as_str() {
        "CN" => "中国",
        "HK" => "香港",
        "MO" => "澳门",
        "TW" => "台湾",
        "JP" => "日本",
        "KR" => "韩国",
        "SG" => "新加坡",
        "TH" => "泰国",
        "MY" => "马来西亚",
        "VN" => "越南",
        "US" => "美国",
        "GB" => "英国",
        "FR" => "法国",
        "DE" => "德国",
        "IT" => "意大利",
        "ES" => "西班牙",
        "AU" => "澳大利亚",
        "AE" => "阿联酋",
        "RU" => "俄罗斯",
        "IN" => "印度",
        _ => return None,
    })
}

pub fn country_name(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "CN" => "China",
        "HK" => "Hong Kong",
        "MO" => "Macao",
        "TW" => "Taiwan",
        "JP" => "Japan",
        "KR" => "Korea",
        "SG" => "Singapore",
        "TH" => "Thailand",
        "MY" => "Malaysia",
        "VN" => "Vietnam",
        "US" => "the United States",
        "GB" => "the United Kingdom",
        "FR" => "France",
        "DE" => "Germany",
        "IT" => "Italy",
        "ES" => "Spain",
        "AU" => "Australia",
        "AE" => "the UAE",
        "RU" => "Russia",
        "IN" => "India",
        _ => return None,
    })
}

impl Fact {
    pub fn to_text(&self) -> String {
        match self {
            Fact::None => String::new(),
            Fact::Num(n) if n.fract() == 0.0 => format!("{}", *n as i64),
            Fact::Num(n) => format!("{n}"),
            Fact::Text(t) => t.to_string(),
            Fact::Bool(b) => b.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_and_the_indexer_read_the_same_values() {
        let engine = build_engine(&ScriptLimits::default());
        let ev = crate::event::decode_str(
            r#"{"id":"e1","type":"location_update","msisdn":"8613900000001","ts":"2026-11-23T08:15:00+08:00","attrs":{"country":"JP","roaming":true,"loyalty":7}}"#,
        )
        .unwrap();
        let mut profile = Profile {
            value_tier: "gold".into(),
            ..Profile::default()
        };
        profile.extra.insert("home_region".into(), "GD".into());
        let mut scope = rhai::Scope::new();
        scope.push("event", EventView(Arc::new(ev)));
        scope.push("profile", ProfileView(Arc::new(profile)));
        let both = |prop: &str, index: &str| {
            let a: Dynamic = engine.eval_with_scope(&mut scope.clone(), prop).unwrap();
            let b: Dynamic = engine.eval_with_scope(&mut scope.clone(), index).unwrap();
            assert_eq!(a.to_string(), b.to_string(), "{prop} vs {index}");
            a.to_string()
        };
        // Contract attributes and envelope fields have getters; the rest use the indexer.
        assert_eq!(both("event.country", r#"event["country"]"#), "JP");
        assert_eq!(both("event.roaming", r#"event["roaming"]"#), "true");
        assert_eq!(both("event.loyalty", r#"event["loyalty"]"#), "7");
        assert_eq!(both("event.type", r#"event["type"]"#), "location_update");
        assert_eq!(both("event.msisdn", r#"event["msisdn"]"#), "8613900000001");
        assert_eq!(both("event.mcc", r#"event["mcc"]"#), "", "absent is ()");
        assert_eq!(
            both("profile.value_tier", r#"profile["value_tier"]"#),
            "gold"
        );
        assert_eq!(
            both("profile.home_region", r#"profile["home_region"]"#),
            "GD"
        );
        assert_eq!(both("profile.known", r#"profile["known"]"#), "false");
    }

    #[test]
    fn parsed_calls_are_remembered_by_their_arguments() {
        let a = parsed_call("count", &["sms", "24h"]).unwrap();
        let again = parsed_call("count", &["sms", "24h"]).unwrap();
        assert!(
            Arc::ptr_eq(&a, &again),
            "the second call reuses the first parse"
        );
        let other = parsed_call("count", &["sms", "7d"]).unwrap();
        assert_ne!(a, other);
        let bad = parsed_call("count", &["SMS!", "24h"]).unwrap_err();
        assert!(bad.contains("not an event type"), "{bad}");
        assert!(
            parsed_call("count", &["SMS!", "24h"]).is_err(),
            "and stays one"
        );
    }

    #[test]
    fn the_parse_cache_stays_bounded() {
        for i in 0..(PARSED_CAP * 2) {
            parsed_call("count", &["sms", &format!("{}s", i + 1)]).unwrap();
        }
        assert!(PARSED.with(|p| p.borrow().len()) <= PARSED_CAP);
        let q = parsed_call("count", &["sms", "90s"]).unwrap();
        assert_eq!(*q, parse_call("count", &["sms", "90s"]).unwrap());
    }
}
