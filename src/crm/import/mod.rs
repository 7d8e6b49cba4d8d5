//! Bulk imports: many records in one upload, each upserted by the operator's natural key in
//! its own savepoint (all of it or none of it); one bad record fails alone, with the field
//! named. The answer streams one report line per record as it is written, then a summary
//! line; its `Import-Records` header says how many records the upload holds, so the report
//! lines are the progress of a large file (n of that many).
//!
//! - `POST /import/customers` ([`customers`]): customers with their accounts, lines and
//!   contacts, by `external_id`.
//! - `POST /import/offerings` ([`offerings`]): the product catalog, by `code`.
//! - `POST /import/customers/{id}/members` ([`members`]): an enterprise's group members, by
//!   `msisdn`.
//!
//! Uploads are NDJSON (`application/x-ndjson`, a record per line), a JSON array
//! (`application/json`) or CSV (`text/csv`, a record per row under a header row). [`upload`]
//! reads every import's upload the same way and [`answer`] streams every import's reports;
//! what differs is how a kind of record is written ([`Import`], or [`Upsert`] for a record at a
//! time) and how its CSV row reads.

pub mod customers;
pub mod members;
pub mod offerings;
pub mod record;

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::crm::CrmState;
use crate::http::ApiError;
use record::{Outcome, Report};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(customers::customers))
        .routes(routes!(offerings::offerings))
        .routes(routes!(members::members))
        // Uploads are larger than API calls: the limit is `crm.import_max_bytes`, read below.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// The answer's header with the number of records the upload holds.
pub const RECORDS_HEADER: &str = "import-records";

/// The last line of an import's answer.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub records: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    summary: &'a Summary,
}

/// Records per transaction. Reports go out once their records are committed.
const CHUNK: usize = 500;

/// An upload's records, each with its 1-based line; a record that could not be read is the
/// error it is reported with.
pub type Parsed = Vec<(usize, Result<Map<String, Value>, ApiError>)>;

/// How one kind of record reads from a CSV row, given the header's names.
pub type CsvRow = fn(&[String], &csv::StringRecord) -> Result<Map<String, Value>, ApiError>;

/// Reads an upload: at most `crm.import_max_bytes`, in the format its `Content-Type` names
/// (NDJSON when it names none), CSV rows read by `csv_row`.
pub async fn upload(
    st: &CrmState,
    headers: &HeaderMap,
    body: Body,
    csv_row: CsvRow,
) -> Result<Parsed, ApiError> {
    let limit = st.config.crm.import_max_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            max_bytes: Some(limit),
            setting: "crm.import_max_bytes",
        })?;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-ndjson")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match kind.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/ndjson" => Ok(ndjson(&bytes)),
        "application/json" => json_array(&bytes),
        "text/csv" => csv_records(&bytes, csv_row),
        other => Err(ApiError::bad_request(format!(
            "Content-Type {other} is not an import format: use application/x-ndjson, application/json or text/csv"
        ))),
    }
}

/// One kind of record an import writes, a chunk at a time.
pub trait Import: Send + Sync + 'static {
    /// Writes `chunk` (at most [`CHUNK`] records) and answers a report per record, in order.
    fn chunk(&self, st: &CrmState, chunk: Parsed) -> impl Future<Output = Vec<Report>> + Send;
}

/// The answer to an import: the `Import-Records` header, then each record's report as its
/// chunk is written, then the summary, as NDJSON. `what` names the import in the log.
pub fn answer(
    st: CrmState,
    what: &'static str,
    records: Parsed,
    import: impl Import,
) -> Result<Response, ApiError> {
    let total = records.len();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    // The import goes on if the client stops reading: each record is atomic either way.
    tokio::spawn(async move {
        let mut summary = Summary::default();
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let chunk: Parsed = records.by_ref().take(CHUNK).collect();
            for report in import.chunk(&st, chunk).await {
                summary.records += 1;
                match report.result {
                    Outcome::Created => summary.created += 1,
                    Outcome::Updated => summary.updated += 1,
                    Outcome::Failed => summary.failed += 1,
                }
                let _ = tx.send(ndjson_line(&report)).await;
            }
        }
        tracing::info!(
            import = what,
            records = summary.records,
            created = summary.created,
            updated = summary.updated,
            failed = summary.failed,
            "import finished"
        );
        let _ = tx
            .send(ndjson_line(&SummaryLine { summary: &summary }))
            .await;
    });
    let stream =
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(RECORDS_HEADER, total)
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}

/// A kind of record written one at a time, each in a savepoint of its chunk's transaction:
/// every [`Upsert`] is an [`Import`].
pub trait Upsert: Send + Sync + 'static {
    /// The field that is the record's natural key, echoed in its report as `external_id`.
    const KEY: &'static str;
    /// Upserts one record in `tx` (the caller commits): created or updated, and its id.
    fn write(
        &self,
        tx: &mut sqlx::AnyConnection,
        obj: Map<String, Value>,
    ) -> impl Future<Output = Result<(Outcome, String), ApiError>> + Send;
}

impl<U: Upsert> Import for U {
    async fn chunk(&self, st: &CrmState, chunk: Parsed) -> Vec<Report> {
        let keys = keys(&chunk, U::KEY);
        match one_by_one(self, st, chunk, &keys).await {
            Ok(reports) => reports,
            Err(e) => not_committed(keys, e),
        }
    }
}

async fn one_by_one<U: Upsert>(
    u: &U,
    st: &CrmState,
    chunk: Parsed,
    keys: &[(usize, Option<String>)],
) -> Result<Vec<Report>, ApiError> {
    let mut tx = crate::store::begin_write(&st.db).await?;
    let mut reports = Vec::with_capacity(chunk.len());
    for ((line, parsed), (_, key)) in chunk.into_iter().zip(keys) {
        let obj = match parsed {
            Ok(obj) => obj,
            Err(e) => {
                reports.push(Report::failed(line, None, e));
                continue;
            }
        };
        savepoint(&mut tx).await?;
        match u.write(&mut tx, obj).await {
            Ok((outcome, id)) => {
                release(&mut tx).await?;
                reports.push(Report {
                    line,
                    external_id: key.clone(),
                    result: outcome,
                    id: Some(id),
                    field: None,
                    message: None,
                });
            }
            Err(e) => {
                undo(&mut tx).await?;
                if let ApiError::Internal(err) = &e {
                    tracing::error!(error = ?err, line, key = U::KEY, "importing a record");
                }
                reports.push(Report::failed(line, key.clone(), e));
            }
        }
    }
    tx.commit().await?;
    Ok(reports)
}

/// Each record's line and natural key (the string in its `field`), for its report.
fn keys(chunk: &Parsed, field: &str) -> Vec<(usize, Option<String>)> {
    chunk
        .iter()
        .map(|(line, rec)| {
            let key = rec
                .as_ref()
                .ok()
                .and_then(|o| o.get(field))
                .and_then(Value::as_str)
                .map(str::to_string);
            (*line, key)
        })
        .collect()
}

/// The reports of a chunk none of which landed: every record failed, the reason logged once.
fn not_committed(keys: Vec<(usize, Option<String>)>, e: ApiError) -> Vec<Report> {
    tracing::error!(error = %e, first_line = keys.first().map(|k| k.0), records = keys.len(),
        "an import chunk could not be committed");
    keys.into_iter()
        .map(|(line, key)| {
            let why = "the batch holding this record could not be committed; send it again";
            Report::failed(line, key, ApiError::Unavailable(why.into()))
        })
        .collect()
}

/// A record's own savepoint: [`release`]d when it is written, [`undo`]ne when it fails.
async fn savepoint(tx: &mut sqlx::AnyConnection) -> Result<(), ApiError> {
    sqlx::query("SAVEPOINT import_record")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn release(tx: &mut sqlx::AnyConnection) -> Result<(), ApiError> {
    sqlx::query("RELEASE SAVEPOINT import_record")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The failed record undone alone; the chunk's other records stay.
async fn undo(tx: &mut sqlx::AnyConnection) -> Result<(), ApiError> {
    sqlx::query("ROLLBACK TO SAVEPOINT import_record")
        .execute(&mut *tx)
        .await?;
    release(tx).await
}

fn ndjson_line<T: Serialize>(v: &T) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// The record's natural key: a non-empty string in `field`, or the field named as required.
fn natural_key(obj: &Map<String, Value>, field: &str, why: &str) -> Result<String, ApiError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(ApiError::field(field, format!("is required: {why}"))),
    }
}

fn object(v: Value) -> Result<Map<String, Value>, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request("a record must be a JSON object")),
    }
}

fn ndjson(bytes: &[u8]) -> Parsed {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(i, l)| {
            let rec = serde_json::from_slice::<Value>(l)
                .map_err(|e| ApiError::bad_request(format!("not JSON: {e}")))
                .and_then(object);
            (i + 1, rec)
        })
        .collect()
}

fn json_array(bytes: &[u8]) -> Result<Parsed, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let items = match v {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => return Err(ApiError::bad_request("send an array of records")),
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i + 1, object(v)))
        .collect())
}

fn csv_records(bytes: &[u8], csv_row: CsvRow) -> Result<Parsed, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::bad_request(format!("CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    Ok(reader
        .records()
        .enumerate()
        .map(|(i, row)| {
            let line = row
                .as_ref()
                .ok()
                .and_then(|r| r.position())
                .map_or(i + 2, |p| p.line() as usize);
            let rec = row
                .map_err(|e| ApiError::bad_request(format!("CSV: {e}")))
                .and_then(|r| csv_row(&names, &r));
            (line, rec)
        })
        .collect())
}

/// How a CSV cell reads into a record's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Text,
    /// A JSON number.
    Number,
    /// `true` / `false` (or `1` / `0`).
    Flag,
    /// A list of strings, comma-separated in the cell (`"sms,app"`).
    List,
}

/// A CSV row as a record whose columns are its fields, each read as `cell` says; empty cells
/// are left out (a field not given).
pub fn fields_record(
    names: &[String],
    row: &csv::StringRecord,
    cell: impl Fn(&str) -> Cell,
) -> Result<Map<String, Value>, ApiError> {
    let mut obj = Map::new();
    for (name, text) in names.iter().zip(row.iter()) {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let v = match cell(name) {
            Cell::Text => text.into(),
            Cell::Number => Value::Number(
                text.parse()
                    .map_err(|_| ApiError::field(name.as_str(), "must be a number"))?,
            ),
            Cell::Flag => match text.to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return Err(ApiError::field(name.as_str(), "must be true or false")),
            },
            Cell::List => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .collect(),
        };
        obj.insert(name.clone(), v);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_numbers_lines_and_skips_blank_ones() {
        let parsed = ndjson(b"{\"a\":1}\n\nnot json\n[1]\n");
        let lines: Vec<usize> = parsed.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert!(parsed[0].1.is_ok());
        assert!(parsed[1].1.is_err());
        assert!(parsed[2].1.is_err());
    }

    #[test]
    fn a_csv_row_of_fields_reads_each_cell_as_its_kind() {
        let names: Vec<String> = [
            "code",
            "price_cents",
            "is_bundle",
            "channels",
            "description",
        ]
        .map(String::from)
        .to_vec();
        let kind = |n: &str| match n {
            "price_cents" => Cell::Number,
            "is_bundle" => Cell::Flag,
            "channels" => Cell::List,
            _ => Cell::Text,
        };
        let row = csv::StringRecord::from(vec!["P1", "3900", "false", "sms, app", ""]);
        let obj = fields_record(&names, &row, kind).unwrap();
        assert_eq!(obj["code"], "P1");
        assert_eq!(obj["price_cents"], 3900);
        assert_eq!(obj["is_bundle"], false);
        assert_eq!(obj["channels"], serde_json::json!(["sms", "app"]));
        assert!(!obj.contains_key("description"), "empty cells are left out");
        let bad = csv::StringRecord::from(vec!["P1", "cheap", "", "", ""]);
        assert!(matches!(
            fields_record(&names, &bad, kind),
            Err(ApiError::BadRequest { field: Some(f), .. }) if f == "price_cents"
        ));
    }
}
