//! Dependencies point one way (docs/architecture.md, "Layers"): this reads every `crate::`
//! path under `src/` and fails on one that points upwards, naming the file and the import.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The engine and what it is built from: it talks to the CRM only through `ports`.
const ENGINE: &[&str] = &[
    "event", "rules", "state", "engine", "decision", "pipeline", "replay", "sim", "channels",
    "kafka",
];
/// What sits above the engine and must stay invisible to it.
const ABOVE_ENGINE: &[&str] = &[
    "crm",
    "auth",
    "http",
    "app",
    "offers",
    "ops",
    "ingest",
    "audit",
    "crud",
    "cli",
    "portal",
    "desk",
    "web",
    "touch",
    "authoring",
    "capture",
    "backtest",
];

/// Inside the engine: `(module, engine modules it may not import)`, so that two of them never
/// import each other.
const ENGINE_BELOW: &[(&str, &[&str])] = &[
    // The outbox (`channels`) reads and settles the offers the pipeline stores; the pipeline
    // hands it committed offers through its `Handoff` trait.
    ("pipeline", &["channels"]),
];

/// `(importing module, modules it may not import)`.
fn forbidden(module: &str) -> Vec<&'static str> {
    if ENGINE.contains(&module) {
        let mut v = ABOVE_ENGINE.to_vec();
        for (m, below) in ENGINE_BELOW {
            if *m == module {
                v.extend_from_slice(below);
            }
        }
        return v;
    }
    match module {
        // The seams and the kits underneath everything.
        "ports" | "access" | "store" | "config" | "alloc" | "pubsub" | "periodic" => {
            let mut v = ABOVE_ENGINE.to_vec();
            v.extend(ENGINE.iter().filter(|m| **m != "event"));
            if module != "ports" {
                // The event type is the contract the ports speak in; nothing else below needs it.
                v.push("event");
                v.push("ports");
            }
            v
        }
        "http" => vec![
            "crm",
            "auth",
            "app",
            "offers",
            "ops",
            "ingest",
            "audit",
            "crud",
            "cli",
            "authoring",
        ],
        "audit" => vec![
            "crm", "auth", "app", "offers", "ops", "ingest", "crud", "cli",
        ],
        // The entity recipe sits on the HTTP kit and the audit trail, below the features.
        "crud" => vec!["crm", "auth", "app", "offers", "ops", "ingest", "cli"],
        "auth" => vec!["crm", "app", "offers", "ops", "ingest", "cli"],
        "crm" | "offers" | "ops" | "ingest" | "portal" | "desk" | "web" | "touch" | "authoring" => {
            vec!["app", "cli"]
        }
        // Captures hold raw events and backtests run rule sets: neither needs the CRM, and the
        // engine reaches them only through its tap (`pipeline::tap`).
        "capture" | "backtest" => vec!["app", "cli", "crm", "portal", "desk", "ingest", "offers"],
        _ => Vec::new(),
    }
}

/// Imports that point the wrong way today, each with the reason it is still allowed.
/// `(file or folder under src/, imported module, reason)`.
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "ingest/",
        "app",
        "the engine-facing routers (ingest, offers, ops) take the whole `AppState`: they use the pipeline itself",
    ),
    (
        "offers/",
        "app",
        "the engine-facing routers (ingest, offers, ops) take the whole `AppState`: they use the pipeline itself",
    ),
    (
        "ops/",
        "app",
        "the engine-facing routers (ingest, offers, ops) take the whole `AppState`: they use the pipeline itself",
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `crm` for `src/crm/accounts/mod.rs`, `app` for
/// `src/app.rs`.
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every module named as `crate::<module>` in code (comments are skipped), including each
/// member of a grouped `use crate::{a, b::c}`.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn imports_point_down_the_layers() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut used_exceptions = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        let module = module_of(rel);
        let text = std::fs::read_to_string(file).unwrap();
        for imported in imported_modules(&text) {
            if imported == module || !forbidden(&module).contains(&imported.as_str()) {
                continue;
            }
            let allowed = ALLOWED
                .iter()
                .find(|(f, m, _)| rel_text.starts_with(f) && *m == imported);
            match allowed {
                Some(exception) => {
                    used_exceptions.insert(*exception);
                }
                None => wrong.push(format!(
                    "src/{rel_text} ({module}) imports crate::{imported}"
                )),
            }
        }
    }
    assert!(
        files.len() > 50,
        "read only {} files under src/",
        files.len()
    );
    assert!(
        wrong.is_empty(),
        "imports against the layer direction (see docs/architecture.md):\n{}",
        wrong.join("\n")
    );
    let stale: Vec<_> = ALLOWED
        .iter()
        .filter(|e| !used_exceptions.contains(*e))
        .collect();
    assert!(
        stale.is_empty(),
        "exceptions no longer needed, remove them: {stale:?}"
    );
}

#[test]
fn the_parser_sees_grouped_and_inline_paths() {
    let text = "use crate::{app::AppState, http};\n// crate::crm in a comment\nlet x = crate::store::new_id();";
    let found = imported_modules(text);
    let expected: BTreeSet<String> = ["app", "http", "store"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
}
