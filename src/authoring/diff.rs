//! What changed between two rule sets, as one unified diff (`git diff` style, a file at a
//! time, in path order).

use super::files::Files;

/// The unified diff from `old` to `new`: added files from `/dev/null`, deleted files to it.
/// Empty when the sets are equal.
pub fn unified(old: &Files, new: &Files) -> String {
    let mut out = String::new();
    let paths: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for path in paths {
        let (a, b) = (old.get(path), new.get(path));
        if a == b {
            continue;
        }
        let from = a.map_or("/dev/null".to_string(), |_| format!("a/{path}"));
        let to = b.map_or("/dev/null".to_string(), |_| format!("b/{path}"));
        let (a, b) = (a.map_or("", String::as_str), b.map_or("", String::as_str));
        let diff = similar::TextDiff::from_lines(a, b);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&from, &to)
                .missing_newline_hint(true)
                .to_string(),
        );
    }
    out
}

/// The paths that differ between the sets.
pub fn changed(old: &Files, new: &Files) -> Vec<String> {
    old.keys()
        .chain(new.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|p| old.get(*p) != new.get(*p))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &[(&str, &str)]) -> Files {
        list.iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn changed_added_and_deleted_files_show_as_git_would() {
        let old = set(&[
            ("a.rhai", "one\ntwo\n"),
            ("gone.rhai", "x\n"),
            ("same.rhai", "s\n"),
        ]);
        let new = set(&[
            ("a.rhai", "one\nTWO\n"),
            ("new.rhai", "y\n"),
            ("same.rhai", "s\n"),
        ]);
        let d = unified(&old, &new);
        assert!(d.contains("--- a/a.rhai\n+++ b/a.rhai\n"), "{d}");
        assert!(d.contains("-two\n+TWO\n"), "{d}");
        assert!(d.contains("--- a/gone.rhai\n+++ /dev/null\n"), "{d}");
        assert!(d.contains("--- /dev/null\n+++ b/new.rhai\n"), "{d}");
        assert!(!d.contains("same.rhai"), "{d}");
        assert_eq!(changed(&old, &new), ["a.rhai", "gone.rhai", "new.rhai"]);
        assert_eq!(unified(&new, &new), "");
    }
}
