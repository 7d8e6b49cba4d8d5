//! Reading rule files: compile, evaluate the declaration, check every call, and report
//! problems as `file:line:column: what is wrong` for people who are not programmers.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rhai::{ASTNode, Expr, Map, Position};

use super::meta::{self, MetaError};
use super::query::{is_state_function, parse_call};
use super::sandbox::{build_engine, with_deadline};
use super::{Breaker, Rule, RuleSet, RuleStats};
use crate::config::ScriptLimits;
use crate::state::{SeriesDef, StateSpec};

/// Largest rule file accepted: rules are short; a huge file is a mistake or an attack.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

fn at(file: &Path, pos: Position, message: impl Into<String>) -> RuleError {
    RuleError {
        file: file.to_path_buf(),
        line: pos.line().unwrap_or(1),
        column: pos.position().unwrap_or(1),
        message: message.into(),
    }
}

/// Finds where a declaration field is written, so its errors point at it.
fn field_position(src: &str, field: &str) -> Position {
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with(&format!("{field}:")) || t.starts_with(&format!("\"{field}\":")) {
            return Position::new((i + 1) as u16, (line.len() - t.len() + 1) as u16);
        }
    }
    src.lines()
        .position(|l| l.contains("#{"))
        .map(|i| Position::new((i + 1) as u16, 1))
        .unwrap_or(Position::new(1, 1))
}

/// Plain words for Rhai's errors.
fn explain(err: &rhai::EvalAltResult) -> String {
    use rhai::EvalAltResult as E;
    match err {
        E::ErrorTooManyOperations(_) => {
            "the script ran too long (operation limit reached: is there an endless loop?)".into()
        }
        E::ErrorStackOverflow(_) => {
            "functions call each other too deeply (call depth limit reached: endless recursion?)"
                .into()
        }
        E::ErrorDataTooLarge(what, _) => format!("{what} grew over the size limit"),
        E::ErrorTerminated(_, _) => "the script ran past its time limit".into(),
        E::ErrorFunctionNotFound(sig, _) => format!("there is no function {sig}"),
        E::ErrorVariableNotFound(v, _) => format!("`{v}` is not defined"),
        other => other
            .to_string()
            .split(" (line")
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

pub fn explain_error(err: &rhai::EvalAltResult) -> String {
    explain(err)
}

/// Everything a valid rule file yields.
struct Compiled {
    rule: Rule,
    defs: Vec<SeriesDef>,
}

fn allowed_functions(engine: &rhai::Engine) -> HashSet<String> {
    let mut names: HashSet<String> = engine
        .gen_fn_signatures(true)
        .into_iter()
        .filter_map(|s| {
            s.split('(')
                .next()
                .map(|n| n.trim().rsplit(' ').next().unwrap_or("").to_string())
        })
        .collect();
    for k in [
        "print",
        "debug",
        "type_of",
        "Fn",
        "call",
        "curry",
        "is_def_var",
        "is_def_fn",
        "is_shared",
    ] {
        names.insert(k.to_string());
    }
    names
}

fn compile_one(
    engine: &rhai::Engine,
    allowed: &HashSet<String>,
    file: &Path,
    src: &str,
    channels: &[String],
) -> Result<Compiled, RuleError> {
    if src.len() > MAX_FILE_BYTES {
        return Err(at(
            file,
            Position::new(1, 1),
            format!(
                "the file is {} bytes; rule files may be at most {MAX_FILE_BYTES}",
                src.len()
            ),
        ));
    }
    let ast = engine.compile(src).map_err(|e| {
        let mut msg = format!("syntax: {}", e.err_type());
        if msg.contains("Expecting ';'") {
            msg.push_str(" (the declaration ends with `};` before the first fn)");
        }
        at(file, e.position(), msg)
    })?;

    // The declaration is the value of the file's top-level code, evaluated once, sandboxed.
    let value = with_deadline(Duration::from_secs(1), || {
        engine.eval_ast::<rhai::Dynamic>(&ast)
    })
    .map_err(|e| {
        at(
            file,
            e.position(),
            format!("while reading the declaration: {}", explain(&e)),
        )
    })?;
    let map = value.try_cast::<Map>().ok_or_else(|| {
        at(file, Position::new(1, 1), "the file must hold the rule's declaration #{ id: ..., name: ..., ... } followed by its functions")
    })?;
    let meta_err = |e: MetaError| at(file, field_position(src, &e.field), e.message);
    let meta = meta::parse(&map, channels).map_err(meta_err)?;
    let tests = meta::parse_tests(&map).map_err(meta_err)?;
    super::schema::check(&meta, src).map_err(|(pos, msg)| at(file, pos, msg))?;
    let warnings = super::schema::warnings(&meta, src, chrono::Utc::now())
        .into_iter()
        .map(|(pos, msg)| at(file, pos, msg))
        .collect();

    let mut has_condition = false;
    let mut has_offer = false;
    let mut script_fns = HashSet::new();
    for f in ast.iter_functions() {
        script_fns.insert(f.name.to_string());
        match f.name {
            "condition" | "offer" if f.params.len() != 2 => {
                let pos = fn_position(src, f.name);
                return Err(at(
                    file,
                    pos,
                    format!(
                        "fn {}() must take two parameters: fn {}(event, profile)",
                        f.name, f.name
                    ),
                ));
            }
            "condition" => has_condition = true,
            "offer" => has_offer = true,
            _ => {}
        }
    }

    // Check every call: state functions need literal arguments (that is how the engine
    // knows which state to keep), and every function must exist.
    let mut problem: Option<RuleError> = None;
    let mut defs = Vec::new();
    for p in meta.filters.iter() {
        if let super::filter::Operand::State(q) = &p.operand {
            defs.extend(q.defs());
        }
    }
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(Expr::FnCall(call, pos))) = path.last() else {
            return true;
        };
        if call.op_token.is_some() {
            return true;
        }
        let name = call.name.as_str();
        if is_state_function(name) {
            let mut args = Vec::new();
            for a in call.args.iter() {
                match a {
                    Expr::StringConstant(s, _) => args.push(s.to_string()),
                    other => {
                        problem = Some(at(file, other.position(), format!("{name}(): write each argument as text in quotes, like {name}(\"sms\", \"24h\")")));
                        return false;
                    }
                }
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            match parse_call(name, &refs) {
                Ok(q) => defs.extend(q.defs()),
                Err(e) => {
                    problem = Some(at(file, *pos, e));
                    return false;
                }
            }
        } else if !allowed.contains(name) && !script_fns.contains(name) {
            problem = Some(at(file, *pos, format!("unknown function {name}(); see docs/rules.md for the built-in functions")));
            return false;
        }
        true
    });
    if let Some(p) = problem {
        return Err(p);
    }

    Ok(Compiled {
        rule: Rule {
            meta,
            file: file.to_path_buf(),
            source: Arc::from(src),
            ast: Arc::new(ast.clone_functions_only()),
            has_condition,
            has_offer,
            tests,
            stats: RuleStats::default(),
            breaker: Breaker::default(),
            warnings,
        },
        defs,
    })
}

/// The files under `dir` (links not followed) ending in `.{ext}`, in path order.
pub(super) fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == ext))
        .map(|e| e.into_path())
        .collect();
    paths.sort();
    paths
}

fn fn_position(src: &str, name: &str) -> Position {
    src.lines()
        .position(|l| l.trim_start().starts_with(&format!("fn {name}")))
        .map(|i| Position::new((i + 1) as u16, 1))
        .unwrap_or(Position::new(1, 1))
}

/// Told `(files compiled, files in all)` as a load goes, for a progress bar on a long one.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Compiles rules from (path, source) pairs. All errors are collected, not just the first.
pub fn load_sources(
    sources: Vec<(PathBuf, String)>,
    limits: &ScriptLimits,
    channels: &[String],
) -> Result<RuleSet, RuleErrors> {
    load_sources_with(sources, limits, channels, &|_, _| {})
}

/// [`load_sources`], telling `progress` after each file.
pub fn load_sources_with(
    sources: Vec<(PathBuf, String)>,
    limits: &ScriptLimits,
    channels: &[String],
    progress: Progress<'_>,
) -> Result<RuleSet, RuleErrors> {
    let engine = build_engine(limits);
    let allowed = allowed_functions(&engine);
    let mut errors = Vec::new();
    let mut rules: Vec<Rule> = Vec::new();
    let mut defs = Vec::new();
    let total = sources.len();
    for (done, (file, src)) in sources.iter().enumerate() {
        let compiled = compile_one(&engine, &allowed, file, src, channels);
        progress(done + 1, total);
        match compiled {
            Ok(c) => {
                if let Some(first) = rules.iter().find(|r| r.meta.id == c.rule.meta.id) {
                    errors.push(at(
                        file,
                        field_position(src, "id"),
                        format!(
                            "duplicate rule id {:?}: also used in {}",
                            c.rule.meta.id,
                            first.file.display()
                        ),
                    ));
                    continue;
                }
                defs.extend(c.defs);
                rules.push(c.rule);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(RuleErrors(errors));
    }
    Ok(RuleSet::new(
        rules,
        StateSpec::new(defs),
        engine,
        limits.clone(),
    ))
}

/// The rules under `rules_dir` with the message templates under `templates_dir`, checked
/// against each other (what the engine runs and `kairos rules check` checks).
pub fn load_all(
    rules_dir: &Path,
    templates_dir: &Path,
    offers: super::templates::Offers,
    limits: &ScriptLimits,
    channels: &[String],
) -> Result<RuleSet, RuleErrors> {
    load_all_with(
        rules_dir,
        templates_dir,
        offers,
        limits,
        channels,
        &|_, _| {},
    )
}

/// [`load_all`], telling `progress` after each rule file.
pub fn load_all_with(
    rules_dir: &Path,
    templates_dir: &Path,
    offers: super::templates::Offers,
    limits: &ScriptLimits,
    channels: &[String],
    progress: Progress<'_>,
) -> Result<RuleSet, RuleErrors> {
    let mut set = load_dir_with(rules_dir, limits, channels, progress)?;
    set.templates = std::sync::Arc::new(super::templates::load(templates_dir, &set, offers)?);
    Ok(set)
}

/// Loads every `*.rhai` file under `dir` (subfolders included), in path order.
pub fn load_dir(
    dir: &Path,
    limits: &ScriptLimits,
    channels: &[String],
) -> Result<RuleSet, RuleErrors> {
    load_dir_with(dir, limits, channels, &|_, _| {})
}

/// [`load_dir`], telling `progress` after each file.
pub fn load_dir_with(
    dir: &Path,
    limits: &ScriptLimits,
    channels: &[String],
    progress: Progress<'_>,
) -> Result<RuleSet, RuleErrors> {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    if !dir.is_dir() {
        return Err(RuleErrors(vec![RuleError {
            file: dir.to_path_buf(),
            line: 0,
            column: 0,
            message: "no such folder of rules".into(),
        }]));
    }
    let paths = files_under(dir, "rhai");
    for p in paths {
        match std::fs::metadata(&p) {
            Ok(m) if m.len() as usize > MAX_FILE_BYTES => errors.push(RuleError {
                file: p.clone(),
                line: 1,
                column: 1,
                message: format!(
                    "the file is {} bytes; rule files may be at most {MAX_FILE_BYTES}",
                    m.len()
                ),
            }),
            _ => match std::fs::read_to_string(&p) {
                Ok(s) => sources.push((p, s)),
                Err(e) => errors.push(RuleError {
                    file: p,
                    line: 0,
                    column: 0,
                    message: format!("cannot read: {e}"),
                }),
            },
        }
    }
    let loaded = load_sources_with(sources, limits, channels, progress);
    match loaded {
        Ok(set) if errors.is_empty() => Ok(set),
        Ok(_) => Err(RuleErrors(errors)),
        Err(RuleErrors(mut more)) => {
            errors.append(&mut more);
            Err(RuleErrors(errors))
        }
    }
}
