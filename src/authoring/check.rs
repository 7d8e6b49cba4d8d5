//! A rule set's checks: the ones `kairos rules check` runs and the engine runs at start
//! (compile every rule with its schema checks, the message templates against the rules, the
//! contact policy), over files held in memory instead of a folder.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::files::{Files, POLICY};
use crate::config::Config;
use crate::decision::contact::{self, ContactPolicy};
use crate::rules::templates::Offers;
use crate::rules::{RuleError, RuleSet};

/// A problem in a file, where it is, in plain words, with what to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// The file's path in the rule set (`dynamic/roaming.rhai`); the templates' path for a
    /// template that does not fit the rules.
    pub file: String,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub suggestion: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl From<&RuleError> for Problem {
    fn from(e: &RuleError) -> Problem {
        Problem {
            file: e.file.to_string_lossy().replace('\\', "/"),
            line: e.line,
            column: e.column,
            suggestion: suggestion(&e.message),
            message: e.message.clone(),
        }
    }
}

/// What to try, from the checks' own words: their "did you mean ...?" when they have one,
/// else a hint for the kind of problem.
fn suggestion(message: &str) -> Option<String> {
    if let Some(i) = message.find("did you mean") {
        let rest = &message[i..];
        let end = rest.find('?').map_or(rest.len(), |j| j + 1);
        return Some(capitalised(&rest[..end]));
    }
    let hint = if message.starts_with("syntax") {
        "Check this line and the one before it for a missing comma, quote, bracket or `;`."
    } else if message.contains("unknown function") {
        "Use one of the built-in functions listed in docs/rules.md."
    } else if message.contains("custom_events") || message.contains("profile_facts") {
        "Declare it in the rule as the message says, or correct the name."
    } else if message.contains("duplicate rule id") {
        "Give each rule its own id."
    } else if message.contains("unknown channel") {
        "Use one of the channels the message lists."
    } else {
        "See docs/rules.md for the declaration fields, the event contract and the functions."
    };
    Some(hint.to_string())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A rule set that passed every check, ready to swap in.
pub struct Compiled {
    pub rules: RuleSet,
    pub contact: ContactPolicy,
}

impl Compiled {
    /// What loads but would keep a rule from ever firing, as `kairos rules check` warns.
    pub fn warnings(&self) -> Vec<Problem> {
        self.rules
            .rules
            .iter()
            .flat_map(|r| r.warnings.iter().map(Problem::from))
            .collect()
    }
}

/// Compiles `files` as the engine would run them, with the message templates of this
/// instance's `channels` folder. Every problem is reported, not just the first.
pub fn compile(files: &Files, config: &Config) -> Result<Compiled, Vec<Problem>> {
    compile_with(files, config, &|_, _| {})
}

/// [`compile`], telling `progress` after each rule file (`kairos rules publish` shows it).
pub fn compile_with(
    files: &Files,
    config: &Config,
    progress: crate::rules::Progress<'_>,
) -> Result<Compiled, Vec<Problem>> {
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .filter(|(path, _)| path.ends_with(".rhai"))
        .map(|(path, text)| (PathBuf::from(path), text.clone()))
        .collect();
    let mut problems = Vec::new();
    let contact = match files.get(POLICY) {
        Some(text) => contact::parse(Path::new(POLICY), text, &config.channels.enabled)
            .map_err(|e| problems.push(Problem::from(&e)))
            .ok(),
        None => Some(ContactPolicy::default()),
    };
    let rules = crate::rules::load_sources_with(
        sources,
        &config.engine.limits,
        &config.channels.enabled,
        progress,
    )
    .and_then(|mut set| {
        // Templates for offers only campaigns make are fine, as when the engine starts.
        let templates = crate::rules::templates::load(
            &config.channels.templates_dir(),
            &set,
            Offers::MayBeElsewhere,
        )?;
        set.templates = std::sync::Arc::new(templates);
        Ok(set)
    })
    .map_err(|errs| problems.extend(errs.0.iter().map(Problem::from)))
    .ok();
    match (rules, contact) {
        (Some(rules), Some(contact)) if problems.is_empty() => Ok(Compiled { rules, contact }),
        _ => Err(problems),
    }
}

/// What a check says of a set: its errors, or that it runs, with its warnings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Validation {
    /// True when the set would be accepted for publishing.
    pub ok: bool,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Rules in the set, when it compiles.
    pub rules: usize,
}

/// [`compile`], told as a [`Validation`].
pub fn validate(files: &Files, config: &Config) -> Validation {
    match compile(files, config) {
        Ok(c) => Validation {
            ok: true,
            errors: Vec::new(),
            warnings: c.warnings(),
            rules: c.rules.rules.len(),
        },
        Err(errors) => Validation {
            ok: false,
            errors,
            warnings: Vec::new(),
            rules: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"#{
    id: "roam", name: "Roaming", kind: "dynamic",
    events: ["location_update"], when: #{ roaming: true }, channels: ["sms"],
    offer: #{ code: "ROAM", validity: "1d" },
    message: "Welcome to {country}",
};
"#;

    fn files(list: &[(&str, &str)]) -> Files {
        list.iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_good_set_compiles_with_its_policy() {
        let c = compile(
            &files(&[
                ("a/roam.rhai", RULE),
                (
                    "policy.toml",
                    "[[suppress]]\nafter = \"declined\"\nfor = \"14d\"\n",
                ),
            ]),
            &Config::default(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.rules.rules.len(), 1);
        assert_eq!(c.rules.rules[0].file, PathBuf::from("a/roam.rhai"));
    }

    #[test]
    fn every_problem_has_its_file_place_and_a_suggestion() {
        let wrong = RULE.replace("{country}", "{countr}");
        let errs = compile(
            &files(&[
                ("roam.rhai", &wrong),
                (
                    "policy.toml",
                    "[[suppress]]\nafter = \"declined\"\nfor = \"14d\"\nwithin = 1\n",
                ),
            ]),
            &Config::default(),
        )
        .err()
        .unwrap();
        assert_eq!(errs.len(), 2, "{errs:?}");
        let rule = errs.iter().find(|e| e.file == "roam.rhai").unwrap();
        assert_eq!((rule.line, rule.column), (5, 26), "{rule:?}");
        assert_eq!(
            rule.suggestion.as_deref(),
            Some("Did you mean `{country}`?"),
            "{rule:?}"
        );
        let policy = errs.iter().find(|e| e.file == "policy.toml").unwrap();
        assert_eq!(policy.line, 4, "{policy:?}");
        assert!(policy.suggestion.is_some());
    }
}
