//! Party SQL. A scoped caller sees parties engaged by customers in scope, and those they
//! created (so a party can be created before its customer).

use serde::{Deserialize, Serialize};

use crate::auth::{Principal, Scope};
use crate::crm::scope::push_customer_scope;
use crate::store::{entity, Arg, Entity, Sql, StoreError};

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

/// `parties p WHERE 1=1` plus the caller's scope.
pub fn scoped(pr: &Principal) -> Sql {
    let mut sql = Sql::new("parties p WHERE 1=1");
    push_scope(&mut sql, pr);
    sql
}

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    pr: &Principal,
    id: &str,
) -> Result<Option<Party>, StoreError> {
    entity::get(conn, scoped(pr), id).await
}

impl Entity for Party {
    type Row = Self;
    const TABLE: &'static str = "parties";
    const COLUMNS: &'static str = COLUMNS;
    const ID: &'static str = "p.id";
    const KIND: &'static str = "party";

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
            ("party_type", self.party_type.as_str().into()),
            ("given_name", (&self.given_name).into()),
            ("family_name", (&self.family_name).into()),
            ("trading_name", (&self.trading_name).into()),
            ("registration_number", (&self.registration_number).into()),
            ("birth_date", (&self.birth_date).into()),
            ("nationality", (&self.nationality).into()),
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
