//! Party SQL. A scoped caller sees parties engaged by customers in scope, and those they
//! created (so a party can be created before its customer).

use serde::{Deserialize, Serialize};

use crate::auth::{Principal, Scope};
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Sql};

/// A party (TMF632): an individual or an organization.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Party {
    pub id: String,
    /// individual | organization
    pub party_type: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Organization name.
    pub trading_name: Option<String>,
    /// Unified social credit code / company registration, or national id for individuals.
    pub registration_number: Option<String>,
    pub birth_date: Option<String>,
    pub nationality: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub const COLUMNS: &str = "p.id, p.party_type, p.given_name, p.family_name, p.trading_name, \
     p.registration_number, p.birth_date, p.nationality, p.created_by, p.created_at, \
     p.updated_at, p.version";

pub fn push_scope(sql: &mut Sql, pr: &Principal) {
    if pr.scope == Scope::All {
        return;
    }
    sql.push(" AND (p.created_by = ")
        .bind(pr.id.as_str())
        .push(" OR EXISTS (SELECT 1 FROM customers c WHERE c.party_id = p.id");
    push_customer_scope(sql, pr, "c");
    sql.push("))");
}

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    pr: &Principal,
    id: &str,
) -> Result<Option<Party>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM parties p WHERE p.id = "));
    sql.bind(id);
    push_scope(&mut sql, pr);
    sql.query_as().fetch_optional(conn).await
}

pub fn values(p: &Party) -> Vec<(&'static str, Arg)> {
    vec![
        ("party_type", p.party_type.as_str().into()),
        ("given_name", (&p.given_name).into()),
        ("family_name", (&p.family_name).into()),
        ("trading_name", (&p.trading_name).into()),
        ("registration_number", (&p.registration_number).into()),
        ("birth_date", (&p.birth_date).into()),
        ("nationality", (&p.nationality).into()),
        ("updated_at", p.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, p: &Party) -> Result<(), sqlx::Error> {
    let mut v = values(p);
    v.extend([
        ("id", p.id.as_str().into()),
        ("created_by", p.created_by.as_str().into()),
        ("created_at", p.created_at.as_str().into()),
        ("version", p.version.into()),
    ]);
    Sql::insert("parties", v).execute(conn).await?;
    Ok(())
}
