//! `/knowledge` (知识库: products, sales scripts, successful cases, FAQs; searched with `?q=`
//! on title and body and `?tag=`) and `/announcements` (公告: a publish window and an optional
//! audience role). `ManageKnowledge` writes; every authenticated user reads.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::{Permission, Principal, Role};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::ApiError;
use crate::store::{new_id, now_text, Arg, Entity, ListParams, ListSpec, Page, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .merge(announcement_routes())
        .routes(routes!(list))
        .routes(routes!(list_announcements))
}

pub const CATEGORIES: &[&str] = &["product", "script", "case", "faq"];

crate::record! {
    /// A knowledge base article.
    #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct Article, new NewArticle, patch ArticlePatch {
        id: String,
        /// product | script | case | faq
        category: String { new, patch },
        title: String { new, patch },
        body: String { new, patch },
        tags: Vec<String> { new default, patch },
        created_by: String,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

#[derive(sqlx::FromRow)]
pub struct ArticleRow {
    id: String,
    category: String,
    title: String,
    body: String,
    tags: String,
    created_by: String,
    created_at: String,
    updated_at: String,
    version: i64,
}

impl From<ArticleRow> for Article {
    fn from(r: ArticleRow) -> Article {
        Article {
            id: r.id,
            category: r.category,
            title: r.title,
            body: r.body,
            tags: r
                .tags
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

const COLUMNS: &str = "k.id, k.category, k.title, k.body, k.tags, k.created_by, k.created_at, \
     k.updated_at, k.version";

/// `,a,b,` so one tag matches `LIKE '%,a,%'`.
fn tags_text(tags: &[String]) -> String {
    format!(",{},", tags.join(","))
}

/// Tags trimmed, lower case, each once; [`validate`] checks what is left.
fn tidy_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn validate(a: &Article) -> Result<(), ApiError> {
    let bad = |t: &String| t.is_empty() || t.contains(',') || t.chars().count() > 40;
    if a.tags.iter().any(bad) {
        return Err(ApiError::field(
            "tags",
            "each tag is 1 to 40 characters without commas",
        ));
    }
    if a.tags.len() > 20 {
        return Err(ApiError::field("tags", "at most 20 tags"));
    }
    validate::one_of("category", &a.category, CATEGORIES)?;
    validate::text("title", &a.title, 200)?;
    validate::text("body", &a.body, 100_000)
}

/// By hand rather than `entity!`: tags are stored as `,a,b,` text, not a JSON list.
impl Entity for Article {
    type Row = ArticleRow;
    const TABLE: &'static str = "knowledge_articles";
    const COLUMNS: &'static str = COLUMNS;
    const ID: &'static str = "k.id";
    const KIND: &'static str = "knowledge_article";
    const NOUN: &'static str = "article";

    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn next_version(&mut self, now: String) {
        self.updated_at = now;
        self.version += 1;
    }
    fn values(&self) -> Vec<(&'static str, Arg)> {
        vec![
            ("category", self.category.as_str().into()),
            ("title", self.title.as_str().into()),
            ("body", self.body.as_str().into()),
            ("tags", tags_text(&self.tags).into()),
            ("updated_at", self.updated_at.as_str().into()),
        ]
    }
    fn insert_only(&self) -> Vec<(&'static str, Arg)> {
        vec![
            ("created_by", self.created_by.as_str().into()),
            ("created_at", self.created_at.as_str().into()),
        ]
    }
}

fn articles() -> Sql {
    Sql::new("knowledge_articles k WHERE 1=1")
}

const SPEC: ListSpec = crate::list_spec!(k; text category;
    sort updated_at, created_at, title; default "k.updated_at DESC");

/// Searches articles: `q` matches title or body (case-insensitive), `tag` one tag.
#[utoipa::path(get, path = "/api/v1/knowledge", tag = "knowledge",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query),
        ("q" = Option<String>, Query), ("tag" = Option<String>, Query), ("category" = Option<String>, Query)),
    responses((status = 200, body = Page<Article>)))]
pub async fn list(
    State(st): State<CrmState>,
    _p: Principal,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Article>>, ApiError> {
    let text = q.remove("q").filter(|s| !s.trim().is_empty());
    let tag = q.remove("tag").filter(|s| !s.trim().is_empty());
    let params = ListParams::parse(&SPEC, &q)?;
    let mut sql = articles();
    if let Some(t) = text {
        let pat = crate::store::like_pattern(t.trim());
        sql.push(" AND (LOWER(k.title) LIKE ")
            .bind(pat.as_str())
            .push(" ESCAPE '\\' OR LOWER(k.body) LIKE ")
            .bind(pat)
            .push(" ESCAPE '\\')");
    }
    if let Some(t) = tag {
        let t = t.trim().to_lowercase();
        sql.push(" AND k.tags LIKE ")
            .bind(format!("%,{},%", t.replace(['%', '_', '\\'], "")));
    }
    crud::list(&st.db, sql, &params).await
}

impl crud::Creatable for Article {
    type New = NewArticle;

    fn build(req: NewArticle, p: &Principal) -> Result<Article, ApiError> {
        let now = now_text();
        let a = Article {
            id: new_id(),
            category: req.category,
            title: req.title,
            body: req.body,
            tags: tidy_tags(req.tags),
            created_by: p.id.clone(),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        };
        validate(&a)?;
        Ok(a)
    }
}

impl crud::Editable for Article {
    type Patch = ArticlePatch;

    fn apply(&mut self, patch: ArticlePatch) {
        patch.apply_to(self);
        self.tags = tidy_tags(std::mem::take(&mut self.tags));
    }

    fn validate(&self) -> Result<(), ApiError> {
        validate(self)
    }
}

fn require_write(p: &Principal) -> Result<(), ApiError> {
    p.require(Permission::ManageKnowledge)
}

/// Every authenticated user reads.
fn anyone(_: &Principal) -> Result<(), ApiError> {
    Ok(())
}

crate::crud_handlers! { Article in CrmState, tag "knowledge", routes crud_routes;
    |p| from articles(), read anyone(&p), write require_write(&p);
    create "/api/v1/knowledge", NewArticle, responses((status = 400), (status = 403));
    read "/api/v1/knowledge/{id}", (("id" = String, Path));
    update "/api/v1/knowledge/{id}", ArticlePatch, (("id" = String, Path));
    /// Deletes an article; the audit record keeps its last content.
    remove "/api/v1/knowledge/{id}", (("id" = String, Path));
}

// Announcements are not edited: the PATCH body the field list also gives goes unused.
crate::record! {
    /// An announcement (公告).
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Announcement, new NewAnnouncement, patch AnnouncementPatch {
        id: String,
        title: String { new },
        body: String { new },
        /// A role (`agent`, `account_manager`, ...) or `null` for everyone.
        audience_role: Option<String> { new },
        publish_from: String {
            /// RFC 3339; default now.
            new opt
        },
        publish_until: Option<String> { new },
        created_by: String,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

crate::entity! { Announcement in "announcements" as a, kind "announcement";
update title, body, audience_role, publish_from, publish_until;
stamp updated_at; insert created_by, created_at }

const ANN_SPEC: ListSpec = crate::list_spec!(a; sort publish_from; default "a.publish_from DESC");

/// Announcements published now for the caller's role; `?all=true` lists every announcement
/// (writers only).
#[utoipa::path(get, path = "/api/v1/announcements", tag = "knowledge",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("all" = Option<bool>, Query)),
    responses((status = 200, body = Page<Announcement>)))]
pub async fn list_announcements(
    State(st): State<CrmState>,
    p: Principal,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Announcement>>, ApiError> {
    let all = q.remove("all").as_deref() == Some("true");
    let params = ListParams::parse(&ANN_SPEC, &q)?;
    let mut sql = all_announcements();
    if all {
        require_write(&p)?;
    } else {
        let now = now_text();
        sql.push(" AND a.publish_from <= ")
            .bind(now.as_str())
            .push(" AND (a.publish_until IS NULL OR a.publish_until > ")
            .bind(now)
            .push(")");
        if p.role != Role::Admin {
            sql.push(" AND (a.audience_role IS NULL OR a.audience_role = ")
                .bind(p.role.as_str())
                .push(")");
        }
    }
    crud::list(&st.db, sql, &params).await
}

impl crud::Creatable for Announcement {
    type New = NewAnnouncement;

    fn build(req: NewAnnouncement, p: &Principal) -> Result<Announcement, ApiError> {
        validate::text("title", &req.title, 200)?;
        validate::text("body", &req.body, 20_000)?;
        if let Some(r) = &req.audience_role {
            if Role::parse(r).is_none() {
                return Err(ApiError::field("audience_role", "must be a role"));
            }
        }
        let now = now_text();
        let from = match &req.publish_from {
            Some(v) => validate::utc_text("publish_from", v)?,
            None => now.clone(),
        };
        let until = req
            .publish_until
            .as_deref()
            .map(|v| validate::utc_text("publish_until", v))
            .transpose()?;
        if until.as_deref().is_some_and(|u| u <= from.as_str()) {
            return Err(ApiError::field(
                "publish_until",
                "must be after publish_from",
            ));
        }
        Ok(Announcement {
            id: new_id(),
            title: req.title,
            body: req.body,
            audience_role: req.audience_role,
            publish_from: from,
            publish_until: until,
            created_by: p.id.clone(),
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        })
    }
}

// No update section: announcements are not edited. `Editable` is what a remove section
// asks for (its `check_remove`, here the default: nothing needs an announcement).
impl crud::Editable for Announcement {
    type Patch = AnnouncementPatch;
}

crate::crud_handlers! { Announcement in CrmState, tag "knowledge", routes announcement_routes;
    |p| from all_announcements(), read anyone(&p), write require_write(&p);
    create "/api/v1/announcements" as create_announcement, NewAnnouncement,
        responses((status = 400), (status = 403));
    remove "/api/v1/announcements/{id}" as remove_announcement, (("id" = String, Path));
}

fn all_announcements() -> Sql {
    Sql::new("announcements a WHERE 1=1")
}
