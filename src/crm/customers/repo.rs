//! Customer SQL. Every read goes through the caller's scope.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::entity::Owned;
use crate::store::{entity, Sql, StoreError};

crate::record! {
    /// A customer (TMF629): the role a party plays towards the operator.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Customer, new NewCustomer, patch CustomerPatch,
        version #[doc = "The version read; or send `If-Match`."] {
        id: String,
        /// The operator's own id for the customer (billing or legacy CRM); unique. Bulk imports
        /// upsert by it.
        external_id: Option<String> {
            /// The operator's own id (unique); bulk imports upsert by it.
            new,
            patch null
        },
        name: String { new, patch },
        /// individual | enterprise
        customer_type: String { new },
        /// The party (TMF632 individual or organization) engaged as this customer.
        party_id: Option<String> { new, patch null },
        /// Enterprise hierarchy: the group customer this one belongs to.
        parent_customer_id: Option<String> { new, patch null },
        account_manager_id: Option<String> {
            /// Defaults to the caller when an account manager creates the customer.
            new,
            patch null
        },
        region_id: Option<String> { new, patch null },
        value_tier: String { new opt = "standard".into(), patch },
        /// A (best) to E.
        credit_class: String { new opt = "B".into(), patch },
        /// Balance of the loyalty ledger; changed only through `/loyalty`.
        loyalty_points: i64,
        /// Churn propensity, 0 to 1.
        churn_score: f64 { new opt, patch },
        arpu_cents: i64 { new opt, patch },
        segment: String { new opt = "mass".into(), patch },
        /// For enterprises: the industry (government, education, finance, ...).
        industry: Option<String> { new, patch null },
        language: String { new opt = "zh".into(), patch },
        timezone: String { new opt, patch },
        home_country: String { new opt, patch },
        preferred_channel: Option<String> { new, patch null },
        /// prospect | active | suspended | inactive
        status: String { new opt = "active".into(), patch },
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

crate::entity! { Customer in "customers" as c, kind "customer", unique "external_id",
owner id;
update external_id, name, customer_type, party_id, parent_customer_id, account_manager_id, region_id,
    value_tier, credit_class, churn_score, arpu_cents, segment, industry, language, timezone,
    home_country, preferred_channel, status;
stamp updated_at; insert loyalty_points, created_at }

/// `E`'s records joined to the customers that own them (`c`), in `p`'s scope: the `from`
/// of reads of what belongs to a customer.
pub fn owned<E: Owned>(p: &Principal) -> Sql {
    let mut sql = Sql::new(&format!(
        "{} JOIN customers c ON c.id = {} WHERE 1=1",
        E::TABLE_AS,
        E::OWNER
    ));
    push_customer_scope(&mut sql, p, "c");
    sql
}

/// `customers c WHERE 1=1` plus the caller's scope.
pub fn scoped(p: &Principal) -> Sql {
    let mut sql = Sql::new("customers c WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
}

/// `?q=`: what an operator's staff types to find a customer. Digits (a leading `+` allowed)
/// match the start of any of the customer's line numbers; any text matches the external id
/// or the party's id document exactly, or a part of the name, ignoring case.
pub fn push_search(sql: &mut Sql, text: &str) {
    let digits = text.strip_prefix('+').unwrap_or(text);
    sql.push(" AND (LOWER(c.name) LIKE ")
        .bind(crate::store::like_pattern(text))
        .push(" ESCAPE '\\' OR c.external_id = ")
        .bind(text)
        .push(" OR EXISTS (SELECT 1 FROM parties pt WHERE pt.id = c.party_id AND pt.registration_number = ")
        .bind(text)
        .push(")");
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Prefix, so the unique index on msisdn serves it.
        sql.push(
            " OR EXISTS (SELECT 1 FROM lines ln WHERE ln.customer_id = c.id \
             AND ln.deleted_at IS NULL AND ln.msisdn LIKE ",
        )
        .bind(format!("{digits}%"))
        .push(")");
    }
    sql.push(")");
}

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Option<Customer>, StoreError> {
    entity::get(conn, scoped(p), id).await
}

/// Direct subsidiaries of an enterprise that the caller can see.
pub async fn children(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Vec<Customer>, StoreError> {
    let mut sql = Sql::new("customers c WHERE c.parent_customer_id = ");
    sql.bind(id);
    push_customer_scope(&mut sql, p, "c");
    sql.push(" ORDER BY c.name, c.id LIMIT 200");
    entity::all(conn, sql).await
}

/// Msisdns of a customer's lines, for `profile_change` events.
pub async fn msisdns(pool: &sqlx::AnyPool, customer_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT msisdn FROM lines WHERE customer_id = $1 AND deleted_at IS NULL ORDER BY msisdn",
    )
    .bind(customer_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}
