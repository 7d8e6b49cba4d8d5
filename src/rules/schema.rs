//! Checks that know the schema: a rule that listens to an event type outside the contract,
//! filters on an attribute its events do not carry, reads `event.countr` or `profile.teir`,
//! or writes `{name}` in a message nothing fills in would load and then never fire (or send
//! a hole), silently. Each is an error here, at its place in the file, with the nearest
//! right name when there is one.
//!
//! What is allowed: the event contract (`event::Known`, its attributes and the envelope),
//! the profile's fields and the facts the CRM provides (`ports::CRM_FACTS`), and what the
//! rule declares its own: `custom_events` (types of the operator's own, whose attributes
//! are then open) and `profile_facts` (facts fed by `profile_change` events).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rhai::Position;

use super::filter::Operand;
use super::meta::RuleMeta;
use super::templates::{placeholders, vars_keys, SPECIALS};
use crate::event::{AttrKind, EventType, Known};

/// What every event carries, besides its attributes.
const ENVELOPE: &[&str] = &["id", "type", "msisdn", "ts"];

/// A problem and where it is.
pub type Problem = (Position, String);

/// The first schema problem of a rule whose declaration parsed as `meta` from `src`.
pub fn check(meta: &RuleMeta, src: &str) -> Result<(), Problem> {
    let code = without_comments(src);
    let mut open = false;
    let mut attrs: BTreeSet<&str> = BTreeSet::new();
    for t in &meta.events {
        match t {
            EventType::Known(k) => attrs.extend(k.attrs().iter().map(|(a, _)| *a)),
            EventType::Custom(name) if meta.custom_events.iter().any(|c| c == name) => open = true,
            EventType::Custom(name) => {
                let all = Known::ALL.iter().map(|k| k.as_str());
                let hint = match nearest(name, all) {
                    Some(n) => format!("did you mean \"{n}\"? "),
                    None => String::new(),
                };
                return Err((
                    position(src, &code, &format!("\"{name}\""), 0),
                    format!(
                        "event type \"{name}\" is not in the event contract; {hint}\
                         a type of your own must also be listed in custom_events: [\"{name}\"]"
                    ),
                ));
            }
        }
    }
    let listened = meta
        .events
        .iter()
        .map(|t| t.as_str().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let attr_ok = |a: &str| open || ENVELOPE.contains(&a) || attrs.contains(a);
    let attr_problem = |a: &str, at: Position| {
        let hint = match nearest(a, attrs.iter().copied().chain(ENVELOPE.iter().copied())) {
            Some(n) => format!("; did you mean `{n}`?"),
            None => format!(
                "; they carry: {}",
                attrs.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        };
        (at, format!("`{a}` is not an attribute of {listened}{hint}"))
    };
    let profile_names: BTreeSet<&str> = super::facts::PROFILE_FIELDS
        .iter()
        .chain(crate::ports::CRM_FACTS)
        .copied()
        .chain(["opt_outs", "opted_out"])
        .chain(meta.profile_facts.iter().map(String::as_str))
        .collect();
    let profile_problem = |f: &str, at: Position| {
        let hint = match nearest(f, profile_names.iter().copied()) {
            Some(n) => format!("did you mean `profile.{n}`? "),
            None => String::new(),
        };
        (
            at,
            format!(
                "the profile has no field `{f}`; {hint}a fact fed by profile_change events \
                 must be listed in profile_facts: [\"{f}\"]"
            ),
        )
    };

    // `when` keys.
    let when_at = src.find("when").unwrap_or(0);
    for p in &meta.filters {
        match &p.operand {
            Operand::Attr(a) if !attr_ok(a) => {
                return Err(attr_problem(a, position(src, &code, a, when_at)));
            }
            Operand::Profile(f) if !profile_names.contains(f.as_str()) => {
                return Err(profile_problem(f, position(src, &code, f, when_at)));
            }
            _ => {}
        }
    }
    // `event.x`, `event["x"]`, `profile.x` and `profile["x"]` in the script.
    for (var, name, offset) in reads(&code) {
        let at = position_at(src, offset);
        match var {
            "event" if !attr_ok(name) => return Err(attr_problem(name, at)),
            "profile" if !profile_names.contains(name) => return Err(profile_problem(name, at)),
            _ => {}
        }
    }
    // `{name}` in messages and the offer code: the script's `vars`, the event's attributes,
    // the profile, and the renderer's own.
    let vars: BTreeSet<String> = vars_keys(src).into_iter().collect();
    let texts = meta
        .message
        .values()
        .chain(meta.variants.values().flat_map(|v| v.values()))
        .chain(std::iter::once(&meta.offer_code));
    for text in texts {
        for var in placeholders(text) {
            let at = || position(src, &code, &format!("{{{var}}}"), 0);
            if let Some(f) = var.strip_prefix("profile.") {
                if !profile_names.contains(f) {
                    return Err(profile_problem(f, at()));
                }
                continue;
            }
            if vars.contains(&var) || SPECIALS.contains(&var.as_str()) || attr_ok(&var) {
                continue;
            }
            let known = vars
                .iter()
                .map(String::as_str)
                .chain(attrs.iter().copied())
                .chain(SPECIALS.iter().copied());
            let hint = match nearest(&var, known) {
                Some(n) => format!("did you mean `{{{n}}}`? "),
                None => String::new(),
            };
            return Err((
                at(),
                format!(
                    "nothing fills `{{{var}}}`: it is not an attribute of {listened}, a \
                     `profile.` field or a key of the `vars` the rule returns, so it would go \
                     out empty; {hint}"
                ),
            ));
        }
    }
    Ok(())
}

/// What would let a rule load and then never fire, as warnings (the rule may be meant to
/// wait, or be kept for the record): a `when` value of a kind its attribute never has
/// (`roaming: "yes"`), a value tier the CRM does not know (`"platinium"`), and an active
/// period that has ended or ends before it starts. `now` is the check's wall clock.
pub fn warnings(meta: &RuleMeta, src: &str, now: DateTime<Utc>) -> Vec<Problem> {
    use super::filter::{Cmp, Lit};
    let code = without_comments(src);
    let mut out = Vec::new();
    let when_at = src.find("when").unwrap_or(0);
    // The kinds an attribute has across the listened types (custom types: unknown).
    let kinds = |a: &str| -> Option<Vec<AttrKind>> {
        let mut ks = Vec::new();
        for t in &meta.events {
            match t {
                EventType::Known(k) => ks.extend(k.attr_kind(a)),
                EventType::Custom(_) => return None,
            }
        }
        (!ks.is_empty() && !ks.contains(&AttrKind::Any)).then_some(ks)
    };
    let fits = |k: AttrKind, l: &Lit| {
        matches!(
            (k, l),
            (AttrKind::Str, Lit::Text(_))
                | (AttrKind::Int | AttrKind::Num, Lit::Num(_))
                | (AttrKind::Bool, Lit::Bool(_))
        )
    };
    let written = |k: AttrKind| match k {
        AttrKind::Str => "text",
        AttrKind::Int | AttrKind::Num => "a number",
        AttrKind::Bool => "true or false",
        AttrKind::Any => "anything",
    };
    for p in &meta.filters {
        match &p.operand {
            Operand::Attr(a) => {
                let Some(ks) = kinds(a) else { continue };
                let never = match &p.cmp {
                    Cmp::Eq(l) => !ks.iter().any(|k| fits(*k, l)),
                    Cmp::In(ls) => !ls.iter().any(|l| ks.iter().any(|k| fits(*k, l))),
                    Cmp::Lt(_) | Cmp::Le(_) | Cmp::Gt(_) | Cmp::Ge(_) => !ks
                        .iter()
                        .any(|k| matches!(k, AttrKind::Int | AttrKind::Num)),
                    // Always holds rather than never: not this check's business.
                    Cmp::Ne(_) => false,
                };
                if never {
                    out.push((
                        position(src, &code, a, when_at),
                        format!(
                            "`{a}` is {} in the events this rule listens to, so `{}` never \
                             holds and the rule never fires; write the value as {}",
                            written(ks[0]),
                            p.text,
                            written(ks[0])
                        ),
                    ));
                }
            }
            Operand::Profile(f) if f == "value_tier" => {
                let values: Vec<&str> = match &p.cmp {
                    Cmp::Eq(Lit::Text(t)) => vec![t.as_str()],
                    Cmp::In(ls) => ls
                        .iter()
                        .filter_map(|l| match l {
                            Lit::Text(t) => Some(t.as_str()),
                            _ => None,
                        })
                        .collect(),
                    _ => continue,
                };
                let tiers = crate::ports::VALUE_TIERS;
                let unknown: Vec<&str> =
                    values.into_iter().filter(|v| !tiers.contains(v)).collect();
                for v in unknown {
                    let hint = match nearest(&v.to_lowercase(), tiers.iter().copied())
                        .or_else(|| tiers.iter().copied().find(|t| *t == v.to_lowercase()))
                    {
                        Some(n) => format!("did you mean \"{n}\"? "),
                        None => String::new(),
                    };
                    out.push((
                        position(src, &code, &format!("\"{v}\""), when_at),
                        format!(
                            "no customer has value tier \"{v}\" (tiers are {}), so this never \
                             matches; {hint}",
                            tiers.join(", ")
                        )
                        .trim_end()
                        .to_string(),
                    ));
                }
            }
            _ => {}
        }
    }
    let active_at = || position(src, &code, "active", 0);
    match (meta.active_from, meta.active_until) {
        (Some(f), Some(u)) if f > u => out.push((
            active_at(),
            format!("the rule's active period starts ({f}) after it ends ({u}): it never fires"),
        )),
        (_, Some(u)) if u < now => out.push((
            active_at(),
            format!("the rule's active period ended on {u}: it no longer fires"),
        )),
        _ => {}
    }
    out
}

/// The name closest to `name`, if it is close enough to be a slip of the keyboard.
fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::levenshtein(c, name), c))
        .filter(|(d, _)| *d > 0 && *d <= name.len().max(3) / 3 + 1)
        .min()
        .map(|(_, c)| c)
}

/// The source with `//` comments blanked out (same length, so offsets still match).
fn without_comments(src: &str) -> String {
    let mut bytes = src.as_bytes().to_vec();
    let mut start = 0;
    for line in src.split_inclusive('\n') {
        // A `//` inside a string (a URL in a message) ends the scan of that line early:
        // fewer reads checked, never a false error.
        if let Some(i) = line.find("//") {
            let end = start + line.trim_end_matches('\n').len();
            bytes[start + i..end].fill(b' ');
        }
        start += line.len();
    }
    String::from_utf8(bytes).expect("whole characters replaced by spaces stay UTF-8")
}

/// `(variable, name, byte offset of the name)` for every `event.x` / `event["x"]` and
/// `profile.x` / `profile["x"]` in `code`, not counting method calls (`profile.opted_out(..)`
/// is listed as `opted_out`).
fn reads(code: &str) -> Vec<(&'static str, &str, usize)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for var in ["event", "profile"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(var) {
            let start = from + i;
            from = start + var.len();
            let before = start.checked_sub(1).map(|j| bytes[j]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
                continue;
            }
            let rest = &code[from..];
            let (name_at, name) = if let Some(r) = rest.strip_prefix('.') {
                let n = r
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(r.len());
                (from + 1, &r[..n])
            } else if let Some(r) = rest.strip_prefix("[\"") {
                let Some(n) = r.find('"') else { continue };
                (from + 2, &r[..n])
            } else {
                continue;
            };
            if !name.is_empty() {
                out.push((var, name, name_at));
            }
        }
    }
    out.sort_by_key(|(_, _, at)| *at);
    out
}

/// Where `needle` first appears in the code at or after `from` (else at the start).
fn position(src: &str, code: &str, needle: &str, from: usize) -> Position {
    let at = code[from.min(code.len())..]
        .find(needle)
        .map(|i| i + from)
        .or_else(|| code.find(needle))
        .unwrap_or(0);
    position_at(src, at)
}

fn position_at(src: &str, offset: usize) -> Position {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().count()
        - before
            .rfind('\n')
            .map_or(0, |i| before[..=i].chars().count())
        + 1;
    Position::new(line as u16, column as u16)
}
