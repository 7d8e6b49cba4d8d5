//! Party SQL. A scoped caller sees parties engaged by customers in scope, and those they
//! created (so a party can be created before its customer).

use serde::{Deserialize, Serialize};

use crate::auth::{Principal, Scope};
use crate::crm::scope::push_customer_scope;
use crate::store::{entity, Entity, Sql, StoreError};

crate::record! {
    /// A party (TMF632): an individual or an organization.
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Party, new NewParty, patch PartyPatch {
        id: String,
        /// individual | organization
        party_type: String { new },
        given_name: Option<String> { new, patch null },
        family_name: Option<String> { new, patch null },
        /// Organization name.
        trading_name: Option<String> { new, patch null },
        /// Unified social credit code / company registration, or national id for individuals.
        registration_number: Option<String> { new, patch null },
        birth_date: Option<String> { new, patch null },
        nationality: Option<String> { new, patch null },
        created_by: String,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

pub const COLUMNS: &str = <Party as Entity>::COLUMNS;

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

crate::entity! { Party in "parties" as p, kind "party";
update party_type, given_name, family_name, trading_name, registration_number, birth_date,
    nationality;
stamp updated_at; insert created_by, created_at }
