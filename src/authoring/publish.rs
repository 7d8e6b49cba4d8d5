//! Publishing: a set is checked whole, recorded as the next version, swapped in here and
//! announced. The rules of who may publish what live here too (four eyes: the author of a
//! change does not approve it), told as [`Refusal`]s the HTTP layer turns into answers.

use std::sync::Arc;

use super::check::{Compiled, Problem};
use super::files::Files;
use super::store::{self, Draft, NewVersion, Version};
use super::sync::{
    compile_off_thread, compile_off_thread_with, Announce, RuleSync, SharedProgress, Swapped,
};
use crate::config::Config;
use crate::store::{kept, Db, StoreError};

/// Why a publish did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The set does not pass the checks: nothing was recorded, the running set stays.
    #[error("the rule set does not pass its checks ({} problem(s)); the running set stays", .0.len())]
    Invalid(Vec<Problem>),
    /// Four eyes: the publisher wrote (one of) the change(s).
    #[error("the author of a change cannot approve it: draft {draft} ({path}) was written by {author}; another user with publish_rules publishes it")]
    OwnChange {
        draft: String,
        path: String,
        author: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    /// Something changed underneath: the file since the draft was written, or the active
    /// version since the set was checked.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A version to record: a whole set and who is behind it.
pub struct Change {
    pub files: Files,
    pub author: String,
    pub approved_by: String,
    pub comment: String,
    pub restores: Option<i64>,
    pub drafts: Vec<String>,
    /// The version the set was made from: recording fails if another came since.
    pub after: Option<i64>,
}

/// Checks `change`'s set and records it as the next version; the engine is not touched
/// (`kairos rules publish` uses this; instances pick the version up by polling).
pub async fn record(
    db: &Db,
    config: &Arc<Config>,
    change: Change,
) -> Result<(Version, Compiled), Refusal> {
    record_with(db, config, change, Arc::new(|_, _| {})).await
}

/// [`record`], telling `progress` as the set compiles.
pub async fn record_with(
    db: &Db,
    config: &Arc<Config>,
    change: Change,
    progress: SharedProgress,
) -> Result<(Version, Compiled), Refusal> {
    let compiled = compile_off_thread_with(change.files.clone(), config.clone(), progress)
        .await
        .map_err(Refusal::Invalid)?;
    let number = store::publish(
        db,
        change.after,
        NewVersion {
            files: &change.files,
            author: &change.author,
            approved_by: &change.approved_by,
            comment: &change.comment,
            restores: change.restores,
            drafts: &change.drafts,
        },
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(m) => Refusal::Conflict(m),
        other => Refusal::Store(other),
    })?;
    let version = store::version(db, number)
        .await?
        .ok_or_else(|| Refusal::NotFound(format!("rule version {number}")))?;
    Ok((version, compiled))
}

/// What a publish did.
pub struct Published {
    pub version: Version,
    pub swapped: Swapped,
    /// Instances that heard the announcement (this one included), when instances share Redis.
    pub instances_notified: Option<i64>,
}

/// [`record`], then swaps the set in here and tells the other instances.
pub async fn publish(sync: &RuleSync, change: Change) -> Result<Published, Refusal> {
    let (version, compiled) = record(sync.db(), sync.config(), change).await?;
    let swapped = sync.install(version.number, compiled).await?;
    let instances_notified = sync.announce(Announce::Publish, version.number).await;
    Ok(Published {
        version,
        swapped,
        instances_notified,
    })
}

/// The active version's number and files (none before the first start recorded one).
pub async fn active_files(db: &Db) -> Result<(Option<i64>, Files), StoreError> {
    let Some(n) = store::active(db).await? else {
        return Ok((None, Files::new()));
    };
    Ok((Some(n), store::files_of(db, n).await?))
}

/// `files` with `draft`'s change applied.
pub fn apply(files: &mut Files, draft: &Draft) {
    match &draft.content {
        Some(text) => {
            files.insert(draft.path.clone(), text.clone());
        }
        None => {
            files.remove(&draft.path);
        }
    }
}

/// Publishes the active set with `drafts` applied, approved by `publisher`, who wrote none
/// of them. A draft whose file changed since the version it was written against is refused:
/// its author looks at the newer file first.
pub async fn publish_drafts(
    sync: &RuleSync,
    ids: &[String],
    comment: &str,
    publisher: &str,
) -> Result<Published, Refusal> {
    if ids.is_empty() {
        return Err(Refusal::BadRequest(
            "drafts: name at least one draft to publish".into(),
        ));
    }
    let db = sync.db();
    let (after, mut files) = active_files(db).await?;
    let mut authors: Vec<String> = Vec::new();
    let mut seen_paths = std::collections::BTreeSet::new();
    for id in ids {
        let draft = kept::<Draft>(db, id)
            .await?
            .ok_or_else(|| Refusal::NotFound(format!("rule draft {id}")))?;
        if draft.author == publisher {
            return Err(Refusal::OwnChange {
                draft: draft.id,
                path: draft.path,
                author: draft.author,
            });
        }
        if !seen_paths.insert(draft.path.clone()) {
            return Err(Refusal::Conflict(format!(
                "two of the drafts change {}: publish one, then rebase the other",
                draft.path
            )));
        }
        if Some(draft.base_version) != after {
            let base = store::files_of(db, draft.base_version).await?;
            if base.get(&draft.path) != files.get(&draft.path) {
                return Err(Refusal::Conflict(format!(
                    "{} changed in a version published after {} (the one draft {} was written \
                     against); update the draft from the active version first",
                    draft.path, draft.base_version, draft.id
                )));
            }
        }
        apply(&mut files, &draft);
        if !authors.contains(&draft.author) {
            authors.push(draft.author);
        }
    }
    publish(
        sync,
        Change {
            files,
            author: authors.join(", "),
            approved_by: publisher.to_string(),
            comment: comment.to_string(),
            restores: None,
            drafts: ids.to_vec(),
            after,
        },
    )
    .await
}

/// Publishes a new version equal to version `number`. The set was reviewed when it was
/// first published, so one person with the publish permission may restore it alone (the
/// way back in an incident should not wait for a second person); they are recorded as its
/// author and approver.
pub async fn rollback(
    sync: &RuleSync,
    number: i64,
    comment: &str,
    publisher: &str,
) -> Result<Published, Refusal> {
    let db = sync.db();
    if store::version(db, number).await?.is_none() {
        return Err(Refusal::NotFound(format!("rule version {number}")));
    }
    let after = store::active(db).await?;
    if after == Some(number) {
        return Err(Refusal::Conflict(format!(
            "version {number} is the active one already"
        )));
    }
    let files = store::files_of(db, number).await?;
    let comment = if comment.trim().is_empty() {
        format!("rollback to version {number}")
    } else {
        comment.to_string()
    };
    publish(
        sync,
        Change {
            files,
            author: publisher.to_string(),
            approved_by: publisher.to_string(),
            comment,
            restores: Some(number),
            drafts: Vec::new(),
            after,
        },
    )
    .await
}

/// `POST /rules/reload`: the rules folder on this instance's disk (a deployment's, from git)
/// becomes the next version when it differs from the active one; either way every instance
/// compiles the active version afresh (quarantines lifted, message templates re-read). The
/// folder's author is the deployment; the caller approves it.
pub async fn reload_folder(sync: &RuleSync, by: &str) -> Result<Published, Refusal> {
    let config = sync.config().clone();
    let dir = config.engine.rules_dir.clone();
    let files = super::files::read_dir(&dir)
        .map_err(|e| Refusal::BadRequest(format!("rules not reloaded: {e:#}")))?;
    let (after, active) = active_files(sync.db()).await?;
    if files != active || after.is_none() {
        return publish(
            sync,
            Change {
                files,
                author: "rules folder".into(),
                approved_by: by.to_string(),
                comment: format!("reloaded from the rules folder {}", dir.display()),
                restores: None,
                drafts: Vec::new(),
                after,
            },
        )
        .await;
    }
    let number = after.unwrap_or(0);
    // The same set: compiled afresh here, and everywhere else on the announcement.
    let compiled = compile_off_thread(files, config)
        .await
        .map_err(Refusal::Invalid)?;
    let swapped = sync.reinstall(number, compiled).await?;
    let instances_notified = sync.announce(Announce::Reload, number).await;
    let version = store::version(sync.db(), number)
        .await?
        .ok_or_else(|| Refusal::NotFound(format!("rule version {number}")))?;
    Ok(Published {
        version,
        swapped,
        instances_notified,
    })
}
