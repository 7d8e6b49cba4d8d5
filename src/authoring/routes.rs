//! The rule authoring API: drafts, checks, dry runs and tests, versions, publish and
//! rollback. Handlers check the caller and the request, then call `publish`/`store`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::check::{self, Problem, Validation};
use super::files::{self, Files};
use super::publish::{self, Published, Refusal};
use super::store::{self, Draft, DraftChange, Version};
use super::AuthoringState;
use crate::auth::{Permission, Principal};
use crate::http::error::{ErrorBody, SourceProblem};
use crate::http::table::found;
use crate::http::{ApiError, ApiJson};
use crate::ports::Recommendation;
use crate::store::{kept_page, Page};

pub fn router() -> OpenApiRouter<AuthoringState> {
    OpenApiRouter::new()
        .routes(routes!(list_drafts, create_draft))
        .routes(routes!(get_draft, update_draft, delete_draft))
        .routes(routes!(validate_draft))
        .routes(routes!(validate_source))
        .routes(routes!(dry_run))
        .routes(routes!(run_tests))
        .routes(routes!(list_versions, publish_drafts))
        .routes(routes!(get_version))
        .routes(routes!(rollback))
}

const MAX_COMMENT: usize = 2000;
const MAX_DRY_RUN_EVENTS: usize = 1000;

/// The 400 for a set or a rule that does not pass its checks: `what` in words, then each
/// problem on a line, and the problems with their file, line and column.
pub fn invalid(what: &str, list: Vec<Problem>) -> ApiError {
    let listed = list.iter().map(ToString::to_string).collect::<Vec<_>>();
    ApiError::Invalid {
        message: format!("{what}:\n{}", listed.join("\n")),
        problems: list
            .into_iter()
            .map(|p| SourceProblem {
                file: p.file,
                line: p.line,
                column: p.column,
                message: p.message,
                suggestion: p.suggestion,
            })
            .collect(),
    }
}

/// The one answer for every refusal of a publish, rollback or reload.
pub fn refused(who: &Principal, r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid(list) => invalid(
            "the rule set does not pass its checks; nothing was published and the running set \
             stays",
            list,
        ),
        own @ Refusal::OwnChange { .. } => who.refuse(
            Permission::PublishRules,
            own.to_string(),
            Permission::PublishRules.roles(),
        ),
        Refusal::NotFound(what) => ApiError::NotFound(what),
        Refusal::Conflict(m) => ApiError::Conflict(m),
        Refusal::BadRequest(m) => ApiError::bad_request(m),
        Refusal::Store(e) => e.into(),
        Refusal::Internal(e) => ApiError::internal(e),
    }
}

fn comment(c: &str) -> Result<(), ApiError> {
    if c.contains('\0') {
        return Err(ApiError::field(
            "comment",
            "must not contain NUL characters",
        ));
    }
    if c.chars().count() > MAX_COMMENT {
        return Err(ApiError::field(
            "comment",
            format!("may be at most {MAX_COMMENT} characters"),
        ));
    }
    Ok(())
}

/// A proposed change to one file: its new text, or its deletion.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    /// The file, relative to the rules folder: `dynamic/roaming.rhai`, or `policy.toml` for
    /// the contact policy.
    pub path: String,
    /// The file's new text. Leave it out with `delete: true` to delete the file.
    pub content: Option<String>,
    /// The change deletes the file.
    #[serde(default)]
    pub delete: bool,
    /// Why: shown to whoever publishes it, and kept with the version.
    #[serde(default)]
    pub comment: String,
}

/// Checks a draft's request against the active version; answers the change to store.
async fn change_of<'a>(
    st: &AuthoringState,
    d: &'a DraftInput,
) -> Result<DraftChange<'a>, ApiError> {
    files::check_path(&d.path).map_err(|e| ApiError::field("path", e))?;
    comment(&d.comment)?;
    let (active, current) = publish::active_files(st.sync.db()).await?;
    let content = match (&d.content, d.delete) {
        (Some(_), true) => {
            return Err(ApiError::field(
                "content",
                "must be left out when the change deletes the file",
            ))
        }
        (None, false) => {
            return Err(ApiError::field(
                "content",
                "is required (or `delete: true` to delete the file)",
            ))
        }
        (None, true) => {
            if !current.contains_key(&d.path) {
                return Err(ApiError::field(
                    "path",
                    format!("no such file in the active version {}", active.unwrap_or(0)),
                ));
            }
            None
        }
        (Some(text), false) => {
            files::check_content(text).map_err(|e| ApiError::field("content", e))?;
            Some(text.as_str())
        }
    };
    Ok(DraftChange {
        path: &d.path,
        content,
        comment: &d.comment,
        base_version: active.unwrap_or(0),
    })
}

async fn draft_or_404(st: &AuthoringState, id: &str) -> Result<Draft, ApiError> {
    found(st.sync.db(), id).await
}

crate::table_handlers! { AuthoringState, tag "rules", |st, who| who.require(Permission::ReadRules);
    /// Drafts waiting to be published, oldest first.
    list "/api/v1/rule-drafts" as list_drafts, Draft,
        |limit, offset| kept_page(st.sync.db(), limit, offset);
    read "/api/v1/rule-drafts/{id}" as get_draft, Draft, |id| draft_or_404(&st, &id);
    /// Published versions, newest (the active one) first.
    list "/api/v1/rule-versions" as list_versions, Version,
        |limit, offset| store::versions(st.sync.db(), limit, offset);
}

/// Proposes a change to one file of the active version. Nothing runs until someone else
/// publishes it.
#[utoipa::path(post, path = "/api/v1/rule-drafts", tag = "rules", request_body = DraftInput,
    responses((status = 201, body = Draft), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_draft(
    State(st): State<AuthoringState>,
    who: Principal,
    ApiJson(d): ApiJson<DraftInput>,
) -> Result<(StatusCode, Json<Draft>), ApiError> {
    who.require(Permission::EditRules)?;
    let change = change_of(&st, &d).await?;
    let draft = store::create_draft(st.sync.db(), &who.id, change).await?;
    Ok((StatusCode::CREATED, Json(draft)))
}

/// Rewrites a draft; only its author may (a change has one author, who may not publish it).
/// The draft now stands against the active version.
#[utoipa::path(put, path = "/api/v1/rule-drafts/{id}", tag = "rules", params(("id" = String, Path)),
    request_body = DraftInput,
    responses((status = 200, body = Draft), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_draft(
    State(st): State<AuthoringState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<DraftInput>,
) -> Result<Json<Draft>, ApiError> {
    who.require(Permission::EditRules)?;
    let before = draft_or_404(&st, &id).await?;
    if before.author != who.id {
        return Err(who.refuse(
            Permission::EditRules,
            format!(
                "only the author of a draft changes it ({} wrote this one); write your own draft",
                before.author
            ),
            Permission::EditRules.roles(),
        ));
    }
    let change = change_of(&st, &d).await?;
    Ok(Json(store::update_draft(st.sync.db(), &id, change).await?))
}

/// Discards a draft: its author, or someone who may publish (turning a change down).
#[utoipa::path(delete, path = "/api/v1/rule-drafts/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_draft(
    State(st): State<AuthoringState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(Permission::EditRules)?;
    let draft = draft_or_404(&st, &id).await?;
    if draft.author != who.id && !who.role.allows(Permission::PublishRules) {
        return Err(who.refuse(
            Permission::PublishRules,
            "a draft is discarded by its author or by someone who may publish",
            Permission::PublishRules.roles(),
        ));
    }
    store::delete_draft(st.sync.db(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks the active version with this draft applied, as a publish would: errors with file,
/// line and column, and warnings for rules that could never fire.
#[utoipa::path(post, path = "/api/v1/rule-drafts/{id}/validate", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = Validation), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn validate_draft(
    State(st): State<AuthoringState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Validation>, ApiError> {
    who.require(Permission::EditRules)?;
    let draft = draft_or_404(&st, &id).await?;
    let (_, mut set) = publish::active_files(st.sync.db()).await?;
    publish::apply(&mut set, &draft);
    Ok(Json(validate_off_thread(&st, set).await?))
}

async fn validate_off_thread(st: &AuthoringState, set: Files) -> Result<Validation, ApiError> {
    let config = st.sync.config().clone();
    tokio::task::spawn_blocking(move || check::validate(&set, &config))
        .await
        .map_err(ApiError::internal)
}

/// A file's text, to check or try without storing it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// Where the file would be (default `draft.rhai`): errors name it, and it replaces the
    /// active version's file of that path.
    pub path: Option<String>,
    pub content: String,
}

/// Checks a file's text in the active set (replacing the file at `path`), as a publish
/// would; stores nothing. For editors that check as one types.
#[utoipa::path(post, path = "/api/v1/rules/validate", tag = "rules", request_body = SourceInput,
    responses((status = 200, body = Validation), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn validate_source(
    State(st): State<AuthoringState>,
    who: Principal,
    ApiJson(s): ApiJson<SourceInput>,
) -> Result<Json<Validation>, ApiError> {
    who.require(Permission::EditRules)?;
    let path = s.path.unwrap_or_else(|| "draft.rhai".into());
    files::check_path(&path).map_err(|e| ApiError::field("path", e))?;
    files::check_content(&s.content).map_err(|e| ApiError::field("content", e))?;
    let (_, mut set) = publish::active_files(st.sync.db()).await?;
    set.insert(path, s.content);
    Ok(Json(validate_off_thread(&st, set).await?))
}

/// Which rule to dry-run or test: exactly one of `source`, `draft_id` and `rule_id`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRef {
    /// A rule file's text, not stored.
    pub source: Option<String>,
    /// A draft's rule file.
    pub draft_id: Option<String>,
    /// A rule of the running version.
    pub rule_id: Option<String>,
}

/// The rule `r` names, compiled alone (its checks apply: errors answer 400 with each
/// problem), as the engine's dry runs and tests take it.
async fn rule_of(
    st: &AuthoringState,
    r: &RuleRef,
) -> Result<std::sync::Arc<crate::rules::Rule>, ApiError> {
    let (path, text) =
        match (&r.source, &r.draft_id, &r.rule_id) {
            (Some(text), None, None) => {
                files::check_content(text).map_err(|e| ApiError::field("source", e))?;
                ("draft.rhai".to_string(), text.clone())
            }
            (None, Some(id), None) => {
                let d = draft_or_404(st, id).await?;
                match d.content {
                Some(text) if d.path.ends_with(".rhai") => (d.path, text),
                _ => return Err(ApiError::field(
                    "draft_id",
                    "this draft holds no rule (it deletes a file or changes the contact policy)",
                )),
            }
            }
            (None, None, Some(id)) => {
                return st.sync.pipeline().rules().get(id).cloned().ok_or_else(|| {
                    ApiError::NotFound(format!("rule {id} in the running version"))
                });
            }
            _ => {
                return Err(ApiError::bad_request(
                    "name the rule with exactly one of source, draft_id and rule_id",
                ))
            }
        };
    let config = st.sync.config().clone();
    let set = tokio::task::spawn_blocking(move || {
        crate::rules::load_sources(
            vec![(path.into(), text)],
            &config.engine.limits,
            &config.channels.enabled,
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|errs| {
        let list = errs.0.iter().map(Problem::from).collect();
        invalid("the rule does not pass its checks", list)
    })?;
    set.rules
        .first()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("the source holds no rule"))
}

/// A dry run: a rule and the events to run it on.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunInput {
    /// A rule file's text, not stored (exactly one of `source`, `draft_id` and `rule_id`).
    pub source: Option<String>,
    /// A draft's rule file.
    pub draft_id: Option<String>,
    /// A rule of the running version.
    pub rule_id: Option<String>,
    /// Contract events (`docs/contract-events.md`), in order; `id` and `msisdn` may be left
    /// out. At most 1000.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Profile fields to set on the subscriber (`{"value_tier": "gold"}`).
    #[schema(value_type = Option<Object>)]
    pub profile: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRunResult {
    pub rule_id: String,
    /// Every decision the rule made, from empty state: `proposed` would go out, `suppressed`
    /// says why not. Nothing is sent or stored.
    pub decisions: Vec<Recommendation>,
    /// The rule's failures on these events, in words.
    pub failures: Vec<String>,
}

/// Runs one rule alone on the given events through the engine's matcher and decision
/// stages (the contact policy of the running version), and answers what it decides.
#[utoipa::path(post, path = "/api/v1/rules/dry-run", tag = "rules", request_body = DryRunInput,
    responses((status = 200, body = DryRunResult), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dry_run(
    State(st): State<AuthoringState>,
    who: Principal,
    ApiJson(input): ApiJson<DryRunInput>,
) -> Result<Json<DryRunResult>, ApiError> {
    who.require(Permission::EditRules)?;
    if input.events.len() > MAX_DRY_RUN_EVENTS {
        return Err(ApiError::field(
            "events",
            format!("may hold at most {MAX_DRY_RUN_EVENTS} events"),
        ));
    }
    let which = RuleRef {
        source: input.source,
        draft_id: input.draft_id,
        rule_id: input.rule_id,
    };
    let rule = rule_of(&st, &which).await?;
    let config = st.sync.config().clone();
    // A policy of its own: the running one's counts of today's sends are not touched.
    let contact = st.sync.pipeline().policy().contact.clone();
    let policy =
        crate::decision::Policy::with_contact(&config, contact).map_err(ApiError::bad_request)?;
    let profile = input.profile.unwrap_or(serde_json::Value::Null);
    let events = input.events;
    let rule_id = rule.meta.id.clone();
    let run = tokio::task::spawn_blocking(move || {
        crate::engine::dry_run(&rule, policy, &profile, &events, &config)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::bad_request)?;
    Ok(Json(DryRunResult {
        rule_id,
        decisions: run.decisions,
        failures: run.failures,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestCase {
    pub name: String,
    pub passed: bool,
    /// Why it failed, in words.
    pub failure: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestRun {
    pub rule_id: String,
    pub passed: usize,
    pub failed: usize,
    pub cases: Vec<TestCase>,
}

/// Runs the test cases a rule carries (its `tests:`), as `kairos rules test` does.
#[utoipa::path(post, path = "/api/v1/rules/test", tag = "rules", request_body = RuleRef,
    responses((status = 200, body = TestRun), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn run_tests(
    State(st): State<AuthoringState>,
    who: Principal,
    ApiJson(r): ApiJson<RuleRef>,
) -> Result<Json<TestRun>, ApiError> {
    who.require(Permission::EditRules)?;
    let rule = rule_of(&st, &r).await?;
    let config = st.sync.config().clone();
    let rule_id = rule.meta.id.clone();
    let outcomes = tokio::task::spawn_blocking(move || crate::engine::run_tests_of(&rule, &config))
        .await
        .map_err(ApiError::internal)?;
    let cases: Vec<TestCase> = outcomes
        .into_iter()
        .map(|o| TestCase {
            name: o.name,
            passed: o.failure.is_none(),
            failure: o.failure,
        })
        .collect();
    let failed = cases.iter().filter(|c| !c.passed).count();
    Ok(Json(TestRun {
        rule_id,
        passed: cases.len() - failed,
        failed,
        cases,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetFile {
    pub path: String,
    pub content: String,
}

/// A version with its files and what it changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: Version,
    /// The version every instance runs now.
    pub active: bool,
    pub files: Vec<SetFile>,
    /// Paths added, changed or deleted since the previous version.
    pub changed: Vec<String>,
    /// Unified diff against the previous version (every file added, for the first).
    pub diff: String,
}

/// One version: its files and its unified diff against the version before it.
#[utoipa::path(get, path = "/api/v1/rule-versions/{number}", tag = "rules", params(("number" = i64, Path)),
    responses((status = 200, body = VersionDetail), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_version(
    State(st): State<AuthoringState>,
    who: Principal,
    Path(number): Path<i64>,
) -> Result<Json<VersionDetail>, ApiError> {
    who.require(Permission::ReadRules)?;
    let db = st.sync.db();
    if number < 1 {
        return Err(ApiError::NotFound(format!("rule version {number}")));
    }
    let version = store::version(db, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("rule version {number}")))?;
    let now = store::files_of(db, number).await?;
    let before = store::files_of(db, number - 1).await?;
    let active = store::active(db).await? == Some(number);
    Ok(Json(VersionDetail {
        version,
        active,
        changed: super::diff::changed(&before, &now),
        diff: super::diff::unified(&before, &now),
        files: now
            .into_iter()
            .map(|(path, content)| SetFile { path, content })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishInput {
    /// The drafts to publish together, applied to the active version. None may be yours.
    pub drafts: Vec<String>,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PublishResult {
    #[serde(flatten)]
    pub version: Version,
    /// Rules in the set now running here.
    pub rules: usize,
    pub state_series: usize,
    /// Instances told at once (this one included), when instances share Redis; the others
    /// find the version within a second by polling.
    pub instances_notified: Option<i64>,
}

impl From<Published> for PublishResult {
    fn from(p: Published) -> Self {
        PublishResult {
            version: p.version,
            rules: p.swapped.rules,
            state_series: p.swapped.state_series,
            instances_notified: p.instances_notified,
        }
    }
}

/// Publishes drafts as the next version: the whole set is checked first (a set with an
/// error is refused with each problem, and the running set stays), then every instance
/// swaps it in between batches within a second. The author of a change cannot publish it.
#[utoipa::path(post, path = "/api/v1/rule-versions", tag = "rules", request_body = PublishInput,
    responses((status = 201, body = PublishResult), (status = 400, body = ErrorBody), (status = 401),
        (status = 403, body = ErrorBody, description = "missing permission, or one's own change"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "a file or the active version changed meanwhile")),
    security(("bearer" = [])))]
pub async fn publish_drafts(
    State(st): State<AuthoringState>,
    who: Principal,
    ApiJson(input): ApiJson<PublishInput>,
) -> Result<(StatusCode, Json<PublishResult>), ApiError> {
    who.require(Permission::PublishRules)?;
    comment(&input.comment)?;
    let published = publish::publish_drafts(&st.sync, &input.drafts, &input.comment, &who.id)
        .await
        .map_err(|r| refused(&who, r))?;
    tracing::info!(version = published.version.number, by = %who.id, "rule version published");
    Ok((StatusCode::CREATED, Json(published.into())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    #[serde(default)]
    pub comment: String,
}

/// Publishes a new version equal to an older one. The older set was approved when first
/// published, so one person who may publish rolls back alone; the set is checked again.
#[utoipa::path(post, path = "/api/v1/rule-versions/{number}/rollback", tag = "rules", params(("number" = i64, Path)),
    request_body = RollbackInput,
    responses((status = 201, body = PublishResult), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "already the active version, or another was published meanwhile")),
    security(("bearer" = [])))]
pub async fn rollback(
    State(st): State<AuthoringState>,
    who: Principal,
    Path(number): Path<i64>,
    ApiJson(input): ApiJson<RollbackInput>,
) -> Result<(StatusCode, Json<PublishResult>), ApiError> {
    who.require(Permission::PublishRules)?;
    comment(&input.comment)?;
    let published = publish::rollback(&st.sync, number, &input.comment, &who.id)
        .await
        .map_err(|r| refused(&who, r))?;
    tracing::info!(version = published.version.number, restores = number, by = %who.id, "rule version rolled back");
    Ok((StatusCode::CREATED, Json(published.into())))
}
