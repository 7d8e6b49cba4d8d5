//! `POST /api/v1/import/customers`: customers, each with its accounts, lines and contacts,
//! upserted by the operator's `external_id` (the record is [`super::record`]). New customers
//! of a chunk are written together, many rows a statement; the rest record by record.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value};

use super::record::{self, Report};
use super::{Import, Parsed};
use crate::auth::Principal;
use crate::crm::profiles::changes;
use crate::crm::scope::require_operator_write;
use crate::crm::CrmState;
use crate::http::ApiError;

/// Imports customers. Each record is a customer's fields (as for `POST /customers`, with
/// `external_id` required) plus optional `accounts: [{name, payment_method, bill_cycle_day}]`,
/// `lines: [{msisdn, plan, status, account, products}]` (products: codes of active offerings
/// the line subscribes to) and `contacts: [{medium_type, email_address,
/// phone_number, ...}]`. An existing customer (same `external_id`, in your scope) is updated
/// with the fields given; its lines are matched by msisdn, its accounts by name, and contacts
/// already there are not added twice, so sending the same file again changes nothing.
///
/// CSV columns are the customer's fields, plus `msisdn`, `plan`, `line_status` and `account`
/// for one line, and `email` and `phone` for contacts; empty cells are left out.
///
/// The answer is NDJSON: a [`Report`] per record (`line`, `external_id`, `result`
/// created | updated | failed, `id`, `field`, `message`) as it is written, then
/// `{"summary": {...}}`. The `Import-Records` header gives the number of records read from
/// the upload before the first is written, so a client can show progress.
#[utoipa::path(post, path = "/api/v1/import/customers", tag = "import",
    request_body(content = Vec<Object>, content_type = "application/json",
        description = "The records as a JSON array. The same records one per line as `application/x-ndjson`, or a CSV with a header row as `text/csv`, are read the same way."),
    responses((status = 200, description = "application/x-ndjson: one Report per record, then {\"summary\": Summary}", body = Report,
            headers(("Import-Records" = usize, description = "How many records the upload holds: the report lines are the progress, n of this many"))),
        (status = 400, body = crate::http::error::ErrorBody), (status = 413, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn customers(
    State(st): State<CrmState>,
    p: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_operator_write(&p)?;
    let records = super::upload(&st, &headers, body, csv_record).await?;
    let cat = {
        let mut conn = st.db.pool.acquire().await?;
        record::Catalog::load(&mut conn).await?
    };
    super::answer(st, "customers", records, Customers { p, cat })
}

/// The caller and the catalog the records are checked against, read once per upload.
struct Customers {
    p: Principal,
    cat: record::Catalog,
}

impl Import for Customers {
    async fn chunk(&self, st: &CrmState, chunk: Parsed) -> Vec<Report> {
        chunk_of(st, &self.p, chunk, &self.cat).await
    }
}

type Done = Vec<(Report, Option<record::Written>)>;

/// Writes a chunk of records in one transaction and reports each; the engine hears of
/// changed profile facts once they are committed.
///
/// New customers (for callers who see every customer) are checked one by one and written
/// together, a many-row insert per table: the statements per record, not the commits, are
/// what a large file costs. Updates, scoped callers, and a chunk whose many-row insert fails
/// (two records of one number, say) go record by record, each in a savepoint so that one
/// that fails is undone alone.
async fn chunk_of(
    st: &CrmState,
    p: &Principal,
    chunk: Parsed,
    cat: &record::Catalog,
) -> Vec<Report> {
    let keys = super::keys(&chunk, "external_id");
    let mut result = None;
    if p.scope == crate::auth::Scope::All {
        match together(st, p, &chunk, &keys, cat).await {
            Ok(done) => result = Some(done),
            Err(e) => tracing::info!(error = %e, "an import chunk goes record by record"),
        }
    }
    let result = match result {
        Some(done) => Ok(done),
        None => one_by_one(st, p, chunk, &keys, cat).await,
    };
    let done = match result {
        Ok(done) => done,
        Err(e) => return super::not_committed(keys, e),
    };
    let mut reports = Vec::with_capacity(done.len());
    for (report, written) in done {
        if let Some(w) = written {
            tell_the_engine(st, &w).await;
        }
        reports.push(report);
    }
    reports
}

fn written(line: usize, external_id: &Option<String>, w: &record::Written) -> Report {
    Report {
        line,
        external_id: external_id.clone(),
        result: w.outcome,
        id: Some(w.after.id.clone()),
        field: None,
        message: None,
    }
}

/// The fast path: new customers gathered and inserted together, then the rest one by one.
async fn together(
    st: &CrmState,
    p: &Principal,
    chunk: &Parsed,
    keys: &[(usize, Option<String>)],
    cat: &record::Catalog,
) -> Result<Done, ApiError> {
    let mut tx = crate::store::begin_write(&st.db).await?;
    let mut all = crate::crud::Deferred::default();
    let mut done: Vec<Option<(Report, Option<record::Written>)>> = Vec::with_capacity(chunk.len());
    let mut later = Vec::new();
    for (i, ((line, parsed), (_, ext))) in chunk.iter().zip(keys).enumerate() {
        let obj = match parsed {
            Ok(obj) => obj.clone(),
            Err(e) => {
                done.push(Some((Report::failed(*line, None, again(e)), None)));
                continue;
            }
        };
        let mut mine = crate::crud::Deferred::default();
        match record::write(
            st,
            &mut tx,
            p,
            obj,
            cat,
            &mut record::Sink::Later(&mut mine),
        )
        .await
        {
            Ok(Some(w)) => {
                all.append(mine);
                done.push(Some((written(*line, ext, &w), Some(w))));
            }
            Ok(None) => {
                later.push(i);
                done.push(None);
            }
            Err(e @ ApiError::Internal(_)) => return Err(e),
            Err(e) => done.push(Some((Report::failed(*line, ext.clone(), e), None))),
        }
    }
    all.flush(&mut tx).await?;
    for i in later {
        let (line, parsed) = &chunk[i];
        let obj = parsed.as_ref().expect("only parsed records wait").clone();
        done[i] = Some(in_savepoint(st, &mut tx, p, *line, &keys[i].1, obj, cat).await?);
    }
    tx.commit().await?;
    Ok(done
        .into_iter()
        .map(|d| d.expect("every record answered"))
        .collect())
}

/// The same error again (a parse error is reported on either path).
fn again(e: &ApiError) -> ApiError {
    match e {
        ApiError::BadRequest { field, message } => ApiError::BadRequest {
            field: field.clone(),
            message: message.clone(),
        },
        other => ApiError::bad_request(other.to_string()),
    }
}

/// The safe path: every record in its own savepoint, written as it is checked.
async fn one_by_one(
    st: &CrmState,
    p: &Principal,
    chunk: Parsed,
    keys: &[(usize, Option<String>)],
    cat: &record::Catalog,
) -> Result<Done, ApiError> {
    let mut tx = crate::store::begin_write(&st.db).await?;
    let mut done = Vec::with_capacity(chunk.len());
    for ((line, parsed), (_, ext)) in chunk.into_iter().zip(keys) {
        match parsed {
            Ok(obj) => done.push(in_savepoint(st, &mut tx, p, line, ext, obj, cat).await?),
            Err(e) => done.push((Report::failed(line, None, e), None)),
        }
    }
    tx.commit().await?;
    Ok(done)
}

/// One record in a savepoint: written, or undone alone when it fails.
async fn in_savepoint(
    st: &CrmState,
    tx: &mut sqlx::AnyConnection,
    p: &Principal,
    line: usize,
    ext: &Option<String>,
    obj: Map<String, Value>,
    cat: &record::Catalog,
) -> Result<(Report, Option<record::Written>), ApiError> {
    super::savepoint(tx).await?;
    match record::write(st, tx, p, obj, cat, &mut record::Sink::Now).await {
        Ok(Some(w)) => {
            super::release(tx).await?;
            Ok((written(line, ext, &w), Some(w)))
        }
        // A record written at once is always written; `None` is only for gathered ones.
        Ok(None) => Err(ApiError::internal(anyhow::anyhow!(
            "an import record was not written"
        ))),
        Err(e) => {
            super::undo(tx).await?;
            if let ApiError::Internal(err) = &e {
                tracing::error!(error = ?err, line, "importing a customer record");
            }
            Ok((Report::failed(line, ext.clone(), e), None))
        }
    }
}

/// What a PATCH of the customer would tell the engine and the retention desk, and the
/// products it owns when subscriptions were added.
async fn tell_the_engine(st: &CrmState, w: &record::Written) {
    let Some(before) = &w.before else {
        return;
    };
    crate::crm::customers::announce(st, before, &w.after).await;
    if w.subscribed {
        changes::emit_owned(st, &w.after.id).await;
    }
    let (old, new) = (before.churn_score, w.after.churn_score);
    crate::crm::retention::on_churn_score(st, &w.after.id, old, new).await;
}

/// Customer fields that are numbers; the rest of a CSV row is text.
const NUMBERS: &[&str] = &["churn_score", "arpu_cents"];

/// One CSV row as a record: customer columns by name, and the line and contact columns
/// gathered into `lines` and `contacts`.
pub fn csv_record(
    names: &[String],
    row: &csv::StringRecord,
) -> Result<Map<String, Value>, ApiError> {
    let mut obj = Map::new();
    let mut line = Map::new();
    let mut contacts = Vec::new();
    for (name, cell) in names.iter().zip(row.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        match name.as_str() {
            "msisdn" | "plan" | "account" => {
                line.insert(name.clone(), cell.into());
            }
            "line_status" => {
                line.insert("status".into(), cell.into());
            }
            "email" => {
                contacts.push(serde_json::json!({"medium_type": "email", "email_address": cell}))
            }
            "phone" => {
                contacts.push(serde_json::json!({"medium_type": "phone", "phone_number": cell}))
            }
            n if NUMBERS.contains(&n) => {
                let v: serde_json::Number = cell
                    .parse()
                    .map_err(|_| ApiError::field(n, "must be a number"))?;
                obj.insert(name.clone(), Value::Number(v));
            }
            _ => {
                obj.insert(name.clone(), cell.into());
            }
        }
    }
    if !line.is_empty() {
        obj.insert("lines".into(), Value::Array(vec![Value::Object(line)]));
    }
    if !contacts.is_empty() {
        obj.insert("contacts".into(), Value::Array(contacts));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_row_gathers_its_line_and_contacts() {
        let names: Vec<String> = [
            "external_id",
            "name",
            "churn_score",
            "msisdn",
            "plan",
            "email",
            "segment",
        ]
        .map(String::from)
        .to_vec();
        let row = csv::StringRecord::from(vec![
            "C1",
            "Li",
            "0.4",
            "8613900000001",
            "basic_39",
            "li@example.com",
            "",
        ]);
        let obj = csv_record(&names, &row).unwrap();
        assert_eq!(obj["external_id"], "C1");
        assert_eq!(obj["churn_score"], 0.4);
        assert!(!obj.contains_key("segment"), "empty cells are left out");
        assert_eq!(obj["lines"][0]["msisdn"], "8613900000001");
        assert_eq!(obj["contacts"][0]["email_address"], "li@example.com");
        let bad = csv::StringRecord::from(vec!["C1", "Li", "high", "", "", "", ""]);
        assert!(matches!(
            csv_record(&names, &bad),
            Err(ApiError::BadRequest { field: Some(f), .. }) if f == "churn_score"
        ));
    }
}
