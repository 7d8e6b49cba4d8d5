//! A rule set as files: path (relative to the rules folder, `/`-separated) -> text. What a
//! version holds, what a draft changes, and what `kairos rules publish DIR` reads from git.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

/// The contact policy's name in a rule set (beside the rules, as on disk).
pub use crate::decision::contact::FILE as POLICY;

/// Largest file a set may hold: the engine's own bound for a rule file.
pub use crate::rules::MAX_FILE_BYTES;

/// Files a set may hold at most: far more than any pack, few enough to publish in a second.
pub const MAX_FILES: usize = 5000;

pub type Files = BTreeMap<String, String>;

/// Why `path` cannot name a file of a rule set, if it cannot: rules are `*.rhai` anywhere
/// under the folder and the contact policy is `policy.toml` at its top; nothing may climb
/// out of the folder or hide (`..`, absolute paths, dot files).
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 200 {
        return Err("must be 1 to 200 characters".into());
    }
    if path != POLICY && !path.ends_with(".rhai") {
        return Err(format!(
            "must name a rule file ending in .rhai, or the contact policy {POLICY}"
        ));
    }
    for part in path.split('/') {
        let plain = part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if part.is_empty() || part.starts_with('.') || !plain {
            return Err(
                "must be a relative path of folder and file names made of letters, digits, \
                 '-', '_' and '.', separated by '/' (like dynamic/roaming.rhai)"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Why `content` cannot be a file of a rule set, if it cannot.
pub fn check_content(content: &str) -> Result<(), String> {
    // PostgreSQL's text refuses NUL, and no rule or policy needs one.
    if content.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if content.len() > MAX_FILE_BYTES {
        return Err(format!(
            "is {} bytes; a file may be at most {MAX_FILE_BYTES}",
            content.len()
        ));
    }
    Ok(())
}

/// The rule set in folder `dir`, as the engine reads it at start: every `*.rhai` under it
/// and its `policy.toml`.
pub fn read_dir(dir: &Path) -> anyhow::Result<Files> {
    anyhow::ensure!(dir.is_dir(), "{} is not a folder of rules", dir.display());
    let mut out = Files::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .context("a file outside the folder it was listed in")?;
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let is_rule = name.ends_with(".rhai");
        if !is_rule && name != POLICY {
            continue;
        }
        check_path(&name).map_err(|e| anyhow::anyhow!("{}: {e}", entry.path().display()))?;
        let text = std::fs::read_to_string(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        check_content(&text).map_err(|e| anyhow::anyhow!("{}: {e}", entry.path().display()))?;
        out.insert(name, text);
    }
    anyhow::ensure!(
        out.len() <= MAX_FILES,
        "{} holds {} files; a rule set may hold at most {MAX_FILES}",
        dir.display(),
        out.len()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_folder_and_name_rules_or_the_policy() {
        for ok in ["a.rhai", "dynamic/roaming-welcome.rhai", "policy.toml"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "../x.rhai",
            "/etc/x.rhai",
            "a//b.rhai",
            ".hidden.rhai",
            "x.toml",
            "dynamic/policy.toml",
            "a b.rhai",
            "a\\b.rhai",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_folder_reads_as_its_rules_and_policy_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("dynamic")).unwrap();
        std::fs::write(d.path().join("dynamic/a.rhai"), "A").unwrap();
        std::fs::write(d.path().join("policy.toml"), "P").unwrap();
        std::fs::write(d.path().join("README.md"), "ignored").unwrap();
        let files = read_dir(d.path()).unwrap();
        assert_eq!(
            files.into_iter().collect::<Vec<_>>(),
            vec![
                ("dynamic/a.rhai".to_string(), "A".to_string()),
                ("policy.toml".to_string(), "P".to_string())
            ]
        );
    }
}
