//! One imported record: a customer with its accounts, lines and contacts, upserted by the
//! operator's external id in one transaction (all of it lands, or none of it).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::Principal;
use crate::crm::accounts::repo::{Account, NewAccount};
use crate::crm::contacts::repo::ContactMedium;
use crate::crm::customers::{self, Customer, CustomerPatch, NewCustomer};
use crate::crm::lines::repo::{Line, NewLine};
use crate::crm::scope::customer_visible;
use crate::crm::subscriptions::repo::NewSubscription;
use crate::crm::CrmState;
use crate::crud;

/// The connection a record is written on, inside the import's transaction.
type Tx = sqlx::AnyConnection;
use crate::http::ApiError;
use crate::store::{entity, now_text, Entity, Sql};

/// What a record may carry besides the customer's own fields.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Parts {
    /// Billing accounts by name; a line names the one it bills to (default: the first, or a
    /// new `main` account when the customer has none).
    #[serde(default)]
    pub accounts: Vec<AccountIn>,
    #[serde(default)]
    pub lines: Vec<LineIn>,
    /// Added unless the customer already has the same medium and value.
    #[serde(default)]
    pub contacts: Vec<crate::crm::contacts::NewContact>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    pub name: String,
    pub payment_method: Option<String>,
    pub bill_cycle_day: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    pub msisdn: String,
    /// A plan code in the catalog.
    pub plan: String,
    pub status: Option<String>,
    /// The name of one of the record's (or the customer's) accounts.
    pub account: Option<String>,
    /// Codes of active catalog offerings the line subscribes to (add-ons, bundles): each an
    /// active subscription, added unless the line has it already.
    #[serde(default)]
    pub products: Vec<String>,
}

/// What an import checks references against, read once per upload.
pub struct Catalog {
    /// Plan codes (type `plan`, not retired).
    pub plans: Vec<String>,
    /// Active offerings: code -> id.
    pub offerings: std::collections::HashMap<String, String>,
}

impl Catalog {
    pub async fn load(conn: &mut sqlx::AnyConnection) -> Result<Catalog, sqlx::Error> {
        let plans = crate::crm::catalog::repo::plan_codes(conn).await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT code, id FROM product_offerings WHERE lifecycle_status = 'active'",
        )
        .fetch_all(conn)
        .await?;
        Ok(Catalog {
            plans,
            offerings: rows.into_iter().collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Failed,
}

/// The answer for one record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// 1-based line of the upload (for CSV, the header is line 1).
    pub line: usize,
    /// The record's natural key: a customer's `external_id`, an offering's `code`, a member's
    /// `msisdn`.
    pub external_id: Option<String>,
    pub result: Outcome,
    /// The id of the record written (the customer, offering or member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The field at fault (`lines[1].plan`), when it failed on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Report {
    pub fn failed(line: usize, external_id: Option<String>, e: ApiError) -> Report {
        let (field, message) = match &e {
            ApiError::BadRequest { field, .. } => (field.clone(), e.to_string()),
            ApiError::Internal(_) => (None, "internal error; see the server log".to_string()),
            _ => (None, e.to_string()),
        };
        Report {
            line,
            external_id,
            result: Outcome::Failed,
            id: None,
            field,
            message: Some(message),
        }
    }
}

/// Prefixes a field error with where in the record it is (`lines[0].`).
fn at(prefix: String) -> impl Fn(ApiError) -> ApiError {
    move |e| match e {
        ApiError::BadRequest {
            field: Some(f),
            message,
        } => {
            let message = message
                .strip_prefix(&format!("{f}: "))
                .unwrap_or(&message)
                .to_string();
            ApiError::field(format!("{prefix}{f}"), message)
        }
        other => other,
    }
}

/// A record's fields as `T`; an unknown or missing field is named.
pub(super) fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| {
        let text = e.to_string();
        // serde names an unknown field as "unknown field `x`": point at it.
        match text.split('`').nth(1) {
            Some(f) if text.starts_with("unknown field") || text.starts_with("missing field") => {
                ApiError::field(f.to_string(), text)
            }
            _ => ApiError::bad_request(text),
        }
    })
}

/// The customer with `external_id` among those the caller may see: the live one, or with
/// `deleted` the deleted one.
async fn with_external_id(
    tx: &mut Tx,
    p: &Principal,
    external_id: &str,
    deleted: bool,
) -> Result<Option<Customer>, ApiError> {
    let mut from = if deleted {
        let mut from = Sql::new("customers c WHERE c.deleted_at IS NOT NULL");
        crate::crm::scope::push_scope_with_deleted(&mut from, p, "c");
        from
    } else {
        customers::repo::scoped(p)
    };
    from.push(" AND c.external_id = ").bind(external_id);
    Ok(entity::find(tx, from).await?)
}

/// Brings back the deleted customer with `external_id`, active, with an audit record of the
/// restore; its deleted lines stay deleted unless the record lists them again.
async fn restore_deleted(
    tx: &mut Tx,
    p: &Principal,
    external_id: &str,
) -> Result<Option<Customer>, ApiError> {
    let Some(gone) = with_external_id(tx, p, external_id, true).await? else {
        return Ok(None);
    };
    let now = now_text();
    sqlx::query(
        "UPDATE customers SET deleted_at = NULL, status = 'active', updated_at = $1, \
         version = version + 1 WHERE id = $2 AND deleted_at IS NOT NULL",
    )
    .bind(&now)
    .bind(&gone.id)
    .execute(&mut *tx)
    .await?;
    let mut back = gone.clone();
    back.status = "active".into();
    back.updated_at = now;
    back.version += 1;
    let change = crate::audit::Change {
        entity: "customer",
        entity_id: &gone.id,
        action: "restore",
        customer_id: Some(&gone.id),
        before: crate::audit::snapshot(&gone),
        after: crate::audit::snapshot(&back),
    };
    crate::audit::record(tx, p, change).await?;
    Ok(Some(back))
}

/// Where a record's creations go: written at once, or gathered for its chunk's many-row
/// insert (`Later`: only new customers, whose checks need no write of their own).
pub enum Sink<'a> {
    Now,
    Later(&'a mut crud::Deferred),
}

impl Sink<'_> {
    async fn insert<E: Entity>(
        &mut self,
        tx: &mut Tx,
        p: &Principal,
        e: &E,
    ) -> Result<(), ApiError> {
        match self {
            Sink::Now => crud::insert_in(tx, p, e).await,
            Sink::Later(d) => {
                d.insert(p, e);
                Ok(())
            }
        }
    }
}

/// What writing one record did, for the report and the engine's profile changes.
pub struct Written {
    pub outcome: Outcome,
    pub before: Option<Customer>,
    pub after: Customer,
    /// Subscriptions were added: the products the customer owns changed.
    pub subscribed: bool,
}

/// Upserts one record in `tx`; the caller commits. `cat` is the catalog's plans and offerings.
/// With a `Later` sink, a record whose customer exists is left alone (`None`): updates are
/// written one record at a time.
pub async fn write(
    st: &CrmState,
    tx: &mut Tx,
    p: &Principal,
    mut obj: Map<String, Value>,
    cat: &Catalog,
    sink: &mut Sink<'_>,
) -> Result<Option<Written>, ApiError> {
    let parts: Parts = parse(Value::Object(
        ["accounts", "lines", "contacts"]
            .into_iter()
            .filter_map(|k| obj.remove(k).map(|v| (k.to_string(), v)))
            .collect(),
    ))?;
    let external_id = match obj.get("external_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(ApiError::field(
                "external_id",
                "is required: imports upsert by the operator's own id",
            ))
        }
    };
    let segments = &st.config.crm.segments;
    let mut existing = with_external_id(tx, p, &external_id, false).await?;
    if existing.is_none() {
        // A customer deleted here whom the operator's system still sends: it comes back (as
        // a deleted line comes back to its own customer), audited; updates go one by one.
        if matches!(sink, Sink::Later(_))
            && with_external_id(tx, p, &external_id, true).await?.is_some()
        {
            return Ok(None);
        }
        existing = restore_deleted(tx, p, &external_id).await?;
    }
    if existing.is_some() && matches!(sink, Sink::Later(_)) {
        return Ok(None);
    }
    let (outcome, before, customer) = match existing {
        None => {
            let req: NewCustomer = parse(Value::Object(obj))?;
            let c = customers::build(st, p, req);
            customers::validate(&c, segments)?;
            customers::check_parent(tx, p, c.parent_customer_id.as_deref()).await?;
            customers::check_refs(tx, p, &c).await?;
            sink.insert(tx, p, &c).await?;
            (Outcome::Created, None, c)
        }
        Some(before) => {
            obj.remove("external_id");
            // `customer_type` is fixed once created; the rest is a patch of what is given.
            if obj.get("customer_type").and_then(Value::as_str) == Some(&before.customer_type) {
                obj.remove("customer_type");
            }
            let patch: CustomerPatch = parse(Value::Object(obj))?;
            let after = customers::apply(before.clone(), patch);
            customers::validate(&after, segments)?;
            if after.parent_customer_id != before.parent_customer_id {
                customers::check_parent(tx, p, after.parent_customer_id.as_deref()).await?;
            }
            customers::check_refs(tx, p, &after).await?;
            // A record that changes nothing writes no version (a re-import is a no-op).
            let after = if after != before {
                crud::update_in(tx, p, &before, after).await?
            } else {
                before.clone()
            };
            (Outcome::Updated, Some(before), after)
        }
    };
    if p.scope != crate::auth::Scope::All && !customer_visible(tx, p, &customer.id).await? {
        return Err(ApiError::field(
            customers::scope_field(p),
            "would put the customer outside your data scope",
        ));
    }
    // A customer created just now has nothing yet to match against.
    let new = outcome == Outcome::Created;
    let accounts = write_accounts(tx, p, sink, &customer, parts.accounts, new).await?;
    let subscribed = write_lines(tx, p, sink, &customer, accounts, parts.lines, cat).await?;
    write_contacts(tx, p, sink, &customer, parts.contacts, new).await?;
    Ok(Some(Written {
        outcome,
        before,
        after: customer,
        subscribed,
    }))
}

async fn write_accounts(
    tx: &mut Tx,
    p: &Principal,
    sink: &mut Sink<'_>,
    c: &Customer,
    wanted: Vec<AccountIn>,
    new: bool,
) -> Result<Vec<Account>, ApiError> {
    let mut have = if new {
        Vec::new()
    } else {
        crate::crm::accounts::repo::for_customer(tx, &c.id).await?
    };
    for (i, a) in wanted.into_iter().enumerate() {
        if have.iter().any(|h| h.name == a.name) {
            continue;
        }
        let acc = new_account(c, a.name, a.payment_method, a.bill_cycle_day);
        crate::crm::accounts::validate(&acc).map_err(at(format!("accounts[{i}].")))?;
        sink.insert(tx, p, &acc).await?;
        have.push(acc);
    }
    Ok(have)
}

fn new_account(
    c: &Customer,
    name: String,
    payment_method: Option<String>,
    bill_cycle_day: Option<i64>,
) -> Account {
    let req = NewAccount {
        customer_id: c.id.clone(),
        name,
        payment_method,
        bill_cycle_day,
        ..NewAccount::default()
    };
    req.into_record()
}

async fn write_lines(
    tx: &mut Tx,
    p: &Principal,
    sink: &mut Sink<'_>,
    c: &Customer,
    mut accounts: Vec<Account>,
    lines: Vec<LineIn>,
    cat: &Catalog,
) -> Result<bool, ApiError> {
    let mut subscribed = false;
    for (i, l) in lines.into_iter().enumerate() {
        let field = at(format!("lines[{i}]."));
        if !cat.plans.contains(&l.plan) {
            return Err(field(crate::crm::lines::not_a_plan(&cat.plans)));
        }
        let mut products = Vec::with_capacity(l.products.len());
        for (j, code) in l.products.iter().enumerate() {
            let id = cat.offerings.get(code).ok_or_else(|| {
                field(ApiError::field(
                    format!("products[{j}]"),
                    format!("{code:?} is not the code of an active offering in the catalog"),
                ))
            })?;
            products.push(id.clone());
        }
        let account_id = match &l.account {
            Some(name) => accounts
                .iter()
                .find(|a| a.name == *name)
                .map(|a| a.id.clone())
                .ok_or_else(|| {
                    field(ApiError::field(
                        "account",
                        "names no account of this customer or record",
                    ))
                })?,
            None => match accounts.first() {
                Some(a) => a.id.clone(),
                None => {
                    let acc = new_account(c, "main".into(), None, None);
                    sink.insert(tx, p, &acc).await?;
                    let id = acc.id.clone();
                    accounts.push(acc);
                    id
                }
            },
        };
        let existing: Option<Line> =
            crate::store::entity::get(tx, Sql::new("lines l WHERE 1=1"), &l.msisdn).await?;
        let line_id = match existing {
            Some(before) if before.customer_id != c.id => {
                return Err(field(ApiError::field(
                    "msisdn",
                    "is already a line of another customer",
                )));
            }
            Some(before) => {
                let mut after = before.clone();
                after.plan = l.plan;
                after.account_id = Some(account_id);
                if let Some(s) = l.status {
                    after.status = s;
                }
                crate::crm::lines::validate(&after).map_err(&field)?;
                if after.plan != before.plan
                    || after.status != before.status
                    || after.account_id != before.account_id
                {
                    crud::update_in(tx, p, &before, after).await?;
                }
                // The subscriptions it has already are not added twice.
                let have: Vec<(String,)> = sqlx::query_as(
                    "SELECT offering_id FROM subscriptions WHERE line_id = $1 AND status <> 'terminated'",
                )
                .bind(&before.id)
                .fetch_all(&mut *tx)
                .await?;
                products.retain(|o| !have.iter().any(|(h,)| h == o));
                before.id
            }
            None => {
                let mut line = NewLine {
                    msisdn: l.msisdn,
                    customer_id: c.id.clone(),
                    account_id: Some(account_id),
                    plan: l.plan,
                    status: l.status,
                    ..NewLine::default()
                }
                .into_record();
                line.activated_at = line.created_at.clone();
                crate::crm::lines::validate(&line).map_err(&field)?;
                // A gathered chunk that meets a deleted line's number fails its insert and is
                // written again record by record (`Sink::Now`), which looks.
                let gone = match sink {
                    Sink::Now => crate::crm::lines::repo::deleted_with(tx, &line.msisdn).await?,
                    Sink::Later(_) => None,
                };
                match gone {
                    // A number of this customer's deleted line brings that line back.
                    Some(gone) => {
                        let line = crate::crm::lines::reclaim(&gone, line)
                            .map_err(|m| field(ApiError::field("msisdn", m)))?;
                        crud::restore_in(tx, p, &gone, line).await?.id
                    }
                    None => {
                        sink.insert(tx, p, &line).await.map_err(&field)?;
                        line.id
                    }
                }
            }
        };
        products.dedup();
        for offering_id in products {
            let mut sub = NewSubscription {
                customer_id: c.id.clone(),
                line_id: Some(line_id.clone()),
                offering_id,
                status: Some("active".into()),
            }
            .into_record();
            sub.start_date = Some(sub.created_at.clone());
            sink.insert(tx, p, &sub).await?;
            subscribed = true;
        }
    }
    Ok(subscribed)
}

async fn write_contacts(
    tx: &mut Tx,
    p: &Principal,
    sink: &mut Sink<'_>,
    c: &Customer,
    contacts: Vec<crate::crm::contacts::NewContact>,
    new: bool,
) -> Result<(), ApiError> {
    if contacts.is_empty() {
        return Ok(());
    }
    let have = if new {
        Vec::new()
    } else {
        crate::crm::contacts::repo::for_customer(tx, &c.id).await?
    };
    for (i, n) in contacts.into_iter().enumerate() {
        let same = have.iter().any(|h| {
            h.medium_type == n.medium_type
                && h.phone_number == n.phone_number
                && h.email_address == n.email_address
                && h.street1 == n.street1
        });
        if same {
            continue;
        }
        let m = ContactMedium {
            customer_id: c.id.clone(),
            ..n.into_record()
        };
        crate::crm::contacts::validate(&m).map_err(at(format!("contacts[{i}].")))?;
        sink.insert(tx, p, &m).await?;
    }
    Ok(())
}
