//! Message templates: the text of an offer per language, in `channels/templates/*.toml`, which
//! operators edit without touching a rule. A template replaces the rule's own `message` for
//! its offer code; a text that the rule's `offer()` returns still wins (it is the rule's
//! decision for that one subscriber).
//!
//! ```toml
//! [[template]]
//! offer = "ROAM-{country}-7D"        # a rule's offer code as the rule writes it
//! text.en = "Welcome to {country_name}! 1 GB for 7 days, reply Y to buy."
//! text.zh-CN = "欢迎来到{country_name}！7天1GB漫游流量包，回复Y订购。"
//! ```
//!
//! Checked when loaded (`kairos rules check` too): the offer must be one a loaded rule offers,
//! and every `{variable}` one that those rules provide, each error with file, line and column.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Rule, RuleError, RuleErrors, RuleSet};
use crate::event::EventType;

/// Texts by offer code, then by language tag.
#[derive(Debug, Default, Clone)]
pub struct Templates {
    by_offer: HashMap<String, BTreeMap<String, String>>,
}

impl Templates {
    pub fn is_empty(&self) -> bool {
        self.by_offer.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_offer.len()
    }

    /// The text for `offer` in `language`: that exact tag, else the same language in another
    /// region (`zh` finds `zh-CN`), else English, else any.
    pub fn text(&self, offer: &str, language: &str) -> Option<&str> {
        let texts = self.by_offer.get(offer)?;
        let primary = |tag: &str| {
            tag.split(['-', '_'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let want = primary(language);
        texts
            .get(language)
            .or_else(|| {
                texts
                    .iter()
                    .find(|(t, _)| primary(t) == want)
                    .map(|(_, v)| v)
            })
            .or_else(|| {
                texts
                    .iter()
                    .find(|(t, _)| primary(t) == "en")
                    .map(|(_, v)| v)
            })
            .or_else(|| texts.values().next())
            .map(String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    template: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    offer: Spanned<String>,
    #[serde(default)]
    text: BTreeMap<String, Spanned<String>>,
}

/// Placeholders the engine fills whatever the rule: see `engine/render.rs`.
pub(crate) const SPECIALS: &[&str] = &["msisdn", "country_name"];

/// How templates for offers no loaded rule makes are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offers {
    /// An error (`kairos rules check`, on the full rule pack).
    MustBeOffered,
    /// Kept with a warning: an instance may run a part of the pack, and a campaign or a
    /// script may name the code.
    MayBeElsewhere,
}

/// Loads and checks every `*.toml` under `dir` against the rules that will use them. A
/// missing folder means no templates.
pub fn load(dir: &Path, rules: &RuleSet, offers: Offers) -> Result<Templates, RuleErrors> {
    let mut out = Templates::default();
    if !dir.is_dir() {
        return Ok(out);
    }
    let paths = super::load::files_under(dir, "toml");
    let mut errors = Vec::new();
    let mut first_seen: HashMap<String, String> = HashMap::new();
    for path in paths {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(err(&path, "", 0, format!("cannot read: {e}")));
                continue;
            }
        };
        let file: File = match toml::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                let at = e.span().map(|s| s.start).unwrap_or(0);
                // One line per problem: the parser's message can span several.
                let msg = e.message().trim().replace('\n', "; ");
                errors.push(err(&path, &text, at, msg));
                continue;
            }
        };
        for entry in file.template {
            let here = |at: usize, msg: String| err(&path, &text, at, msg);
            let offer = entry.offer.get_ref().clone();
            let offering: Vec<&Rule> = rules
                .rules
                .iter()
                .filter(|r| r.meta.offer_code == offer)
                .map(|r| r.as_ref())
                .collect();
            if offering.is_empty() && offers == Offers::MustBeOffered {
                errors.push(here(entry.offer.span().start, unknown_offer(&offer, rules)));
                continue;
            }
            if offering.is_empty() {
                let e = here(entry.offer.span().start, unknown_offer(&offer, rules));
                tracing::warn!("{e} (kept: its variables cannot be checked)");
            }
            let at = format!(
                "{}:{}",
                path.display(),
                line_col(&text, entry.offer.span().start).0
            );
            if let Some(before) = first_seen.insert(offer.clone(), at) {
                errors.push(here(
                    entry.offer.span().start,
                    format!("offer `{offer}` already has a template at {before}"),
                ));
                continue;
            }
            let texts = &entry.text;
            if texts.is_empty() {
                errors.push(here(
                    entry.offer.span().start,
                    format!("offer `{offer}` has no text: add `text.en = \"...\"` and `text.zh-CN = \"...\"`"),
                ));
                continue;
            }
            // With no rule to check against (kept above), any variable is taken.
            let known = if offering.is_empty() {
                Provided {
                    names: BTreeSet::new(),
                    open: true,
                }
            } else {
                provided(&offering)
            };
            let mut kept = BTreeMap::new();
            for (lang, t) in texts {
                if !is_language_tag(lang) {
                    errors.push(here(
                        t.span().start,
                        format!("`{lang}` is not a language tag (write `en`, `zh-CN`, ...)"),
                    ));
                }
                for var in placeholders(t.get_ref()) {
                    if !known.allows(&var) {
                        errors.push(here(
                            t.span().start,
                            match known.nearest(&var) {
                                Some(near) => format!(
                                    "unknown variable `{{{var}}}` in the {lang} text of `{offer}`; did you mean `{{{near}}}`?"
                                ),
                                None => format!(
                                    "unknown variable `{{{var}}}` in the {lang} text of `{offer}`; the rules offering it provide: {}",
                                    known.describe()
                                ),
                            },
                        ));
                    }
                }
                kept.insert(lang.clone(), t.get_ref().clone());
            }
            out.by_offer.insert(offer, kept);
        }
    }
    errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(RuleErrors(errors))
    }
}

fn unknown_offer(offer: &str, rules: &RuleSet) -> String {
    let codes: BTreeSet<&str> = rules
        .rules
        .iter()
        .map(|r| r.meta.offer_code.as_str())
        .collect();
    let near = codes
        .iter()
        .min_by_key(|c| strsim::levenshtein(c, offer))
        .filter(|c| strsim::levenshtein(c, offer) <= offer.len().max(4) / 3);
    match near {
        Some(c) => format!("no loaded rule offers `{offer}`; did you mean `{c}`?"),
        None => format!("no loaded rule offers `{offer}` (a template is for an offer code a rule writes in `offer.code`)"),
    }
}

/// What the rules offering one code can fill in.
struct Provided {
    names: BTreeSet<String>,
    /// A custom event type's attributes are not in the contract: anything may come.
    open: bool,
}

impl Provided {
    fn allows(&self, var: &str) -> bool {
        self.open || var.starts_with("profile.") || self.names.contains(var)
    }
    fn nearest(&self, var: &str) -> Option<&str> {
        self.names
            .iter()
            .map(|n| (strsim::levenshtein(n, var), n))
            .filter(|(d, _)| *d <= var.len().max(3) / 3)
            .min()
            .map(|(_, n)| n.as_str())
    }
    fn describe(&self) -> String {
        let mut v: Vec<String> = self.names.iter().map(|n| format!("{{{n}}}")).collect();
        v.push("{profile.<field>}".into());
        v.join(", ")
    }
}

fn provided(rules: &[&Rule]) -> Provided {
    let mut names: BTreeSet<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    let mut open = false;
    for r in rules {
        for t in &r.meta.events {
            match t {
                EventType::Known(k) => names.extend(k.attrs().iter().map(|(a, _)| a.to_string())),
                EventType::Custom(_) => open = true,
            }
        }
        // What the rule itself writes in its messages and code, and the `vars` its script
        // returns, are the rule author's word.
        for m in r.meta.message.values() {
            names.extend(placeholders(m));
        }
        names.extend(placeholders(&r.meta.offer_code));
        if let Ok(src) = std::fs::read_to_string(&r.file) {
            names.extend(vars_keys(&src));
        }
    }
    Provided { names, open }
}

/// `{name}`s in a text, as the renderer reads them.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(after[..close].trim().to_string());
        rest = &after[close + 1..];
    }
    out
}

/// The keys of every `vars: #{ key: ..., ... }` map literal in a script.
pub(crate) fn vars_keys(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("vars") {
        rest = &rest[i + 4..];
        let body = rest.trim_start();
        let Some(body) = body.strip_prefix(':') else {
            continue;
        };
        let Some(body) = body.trim_start().strip_prefix("#{") else {
            continue;
        };
        let (mut depth, mut token, mut prev_ident) = (1usize, String::new(), None::<String>);
        for c in body.chars() {
            if c.is_alphanumeric() || c == '_' {
                token.push(c);
                continue;
            }
            if !token.is_empty() {
                prev_ident = Some(std::mem::take(&mut token));
            }
            match c {
                '{' | '[' | '(' => {
                    depth += 1;
                    prev_ident = None;
                }
                '}' | ']' | ')' => {
                    depth -= 1;
                    prev_ident = None;
                    if depth == 0 {
                        break;
                    }
                }
                ':' if depth == 1 => out.extend(prev_ident.take()),
                c if c.is_whitespace() => {}
                _ => prev_ident = None,
            }
        }
    }
    out
}

fn is_language_tag(t: &str) -> bool {
    let mut parts = t.split('-');
    let lang = parts.next().unwrap_or("");
    let lang_ok = (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_lowercase());
    lang_ok
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn err(file: &Path, text: &str, at: usize, message: String) -> RuleError {
    let (line, column) = line_col(text, at);
    RuleError {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_fall_back_from_region_to_english_to_any() {
        let mut t = Templates::default();
        t.by_offer.insert(
            "O".into(),
            BTreeMap::from([("en".into(), "hi".into()), ("zh-CN".into(), "你好".into())]),
        );
        assert_eq!(t.text("O", "zh-CN"), Some("你好"));
        assert_eq!(t.text("O", "zh"), Some("你好"));
        assert_eq!(t.text("O", "fr"), Some("hi"));
        assert_eq!(t.text("P", "en"), None);
    }

    #[test]
    fn finds_vars_keys_in_scripts() {
        let src = r#"fn offer(e, p) { #{ score: 0.5, vars: #{ missed: n, total_gb: (a + b), plan: "x" } } }"#;
        assert_eq!(vars_keys(src), ["missed", "total_gb", "plan"]);
        assert!(vars_keys("let vars = 3;").is_empty());
    }

    #[test]
    fn language_tags() {
        for ok in ["en", "zh", "zh-CN", "zh-Hans-CN", "yue"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in ["", "EN", "english", "zh_CN", "zh-", "z"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
