//! Contact medium SQL. Callers check the customer's scope first.

use serde::{Deserialize, Serialize};

use crate::store::{entity, Sql, StoreError};

crate::record! {
    #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct ContactMedium, new NewContact, patch ContactPatch {
        id: String,
        customer_id: String,
        contact_name: Option<String> { new, patch null },
        /// phone | email | address
        medium_type: String {
            /// phone | email | address
            new
        },
        /// Whom at the customer it reaches: general | contract (an enterprise's contract
        /// contact, whom contract reminders go to) | billing | technical.
        role: String {
            /// general (the default) | contract | billing | technical
            new opt = "general".into(),
            patch
        },
        preferred: bool { new default, patch },
        phone_number: Option<String> { new, patch null },
        email_address: Option<String> { new, patch null },
        street1: Option<String> { new, patch null },
        city: Option<String> { new, patch null },
        post_code: Option<String> { new, patch null },
        country: Option<String> { new, patch null },
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

/// As stored: flags are integers.
#[derive(sqlx::FromRow)]
pub struct Row {
    id: String,
    customer_id: String,
    contact_name: Option<String>,
    medium_type: String,
    role: String,
    preferred: i64,
    phone_number: Option<String>,
    email_address: Option<String>,
    street1: Option<String>,
    city: Option<String>,
    post_code: Option<String>,
    country: Option<String>,
    created_at: String,
    updated_at: String,
    version: i64,
}

impl From<Row> for ContactMedium {
    fn from(r: Row) -> Self {
        ContactMedium {
            id: r.id,
            customer_id: r.customer_id,
            contact_name: r.contact_name,
            medium_type: r.medium_type,
            role: r.role,
            preferred: r.preferred != 0,
            phone_number: r.phone_number,
            email_address: r.email_address,
            street1: r.street1,
            city: r.city,
            post_code: r.post_code,
            country: r.country,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

/// The roles a contact may have.
pub const ROLES: &[&str] = &["general", "contract", "billing", "technical"];

/// The phone number contract matters go to: the customer's `contract` phone contact (the
/// preferred one first), `None` if it has none.
pub async fn contract_phone(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT phone_number FROM contact_media WHERE customer_id = $1 AND role = 'contract' \
         AND medium_type = 'phone' AND deleted_at IS NULL ORDER BY preferred DESC, created_at, id LIMIT 1",
    )
    .bind(customer_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|(p,)| p))
}

/// A customer's contact media; the caller has checked the customer is in scope.
pub fn of_customer(customer_id: &str) -> Sql {
    let mut sql = Sql::new("contact_media m WHERE m.customer_id = ");
    sql.bind(customer_id);
    sql
}

pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<ContactMedium>, StoreError> {
    entity::of_owner(conn, customer_id, "m.created_at, m.id").await
}

crate::entity! { ContactMedium in "contact_media" as m, kind "contact_medium", noun "contact",
row Row, owner customer_id, soft deleted_at;
update contact_name, role, preferred, phone_number, email_address, street1, city, post_code, country;
stamp updated_at; insert customer_id, medium_type, created_at }
