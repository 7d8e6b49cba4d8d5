//! `/customers/{id}/members`: the subscribers an enterprise (政企客户) manages itself. Enterprise
//! admins add, change and remove them; scope keeps them inside their own enterprise.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::auth::{Permission, Principal};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::event::Msisdn;
use crate::http::ApiError;
use crate::store::{entity, ListSpec, Page, Sql};

crate::record! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Member, new NewMember, patch MemberPatch {
        id: String,
        /// The enterprise customer.
        customer_id: String,
        name: String { new, patch },
        msisdn: String { new, patch },
        department: Option<String> { new, patch null },
        title: Option<String> { new, patch null },
        email: Option<String> { new, patch null },
        /// active | suspended
        status: String { new opt = "active".into(), patch },
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

const SPEC: ListSpec = crate::list_spec!(m; text msisdn, department, status;
    sort name, created_at; default "m.name");

/// The checks every write of a member passes (the API's and an import's).
pub(crate) fn validate(m: &Member) -> Result<(), ApiError> {
    validate::text("name", &m.name, 200)?;
    Msisdn::parse(&m.msisdn).map_err(|e| ApiError::field("msisdn", e.to_string()))?;
    validate::opt_text("department", m.department.as_deref(), 200)?;
    validate::opt_text("title", m.title.as_deref(), 200)?;
    if let Some(e) = &m.email {
        if !e.contains('@') {
            return Err(ApiError::field("email", "must be an email address"));
        }
    }
    validate::one_of("status", &m.status, &["active", "suspended"])
}

/// An enterprise's own administrator may only add lines of their enterprise (or its
/// subsidiaries): operator staff may enrol a personal line, which they check, but a
/// customer's self-service must not pull another customer's subscriber into its group SMS.
pub(crate) async fn check_own_line(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    msisdn: &str,
) -> Result<(), ApiError> {
    if p.role != crate::auth::Role::EnterpriseAdmin {
        return Ok(());
    }
    match crate::crm::lines::repo::get(conn, p, msisdn).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::field(
            "msisdn",
            "must be a line of your enterprise; ask your account manager to enrol other lines",
        )),
    }
}

/// 404 unless the enterprise is visible to the caller; members exist only under enterprises.
pub(crate) async fn enterprise(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<(), ApiError> {
    match super::repo::get(conn, p, id).await? {
        Some(c) if c.customer_type == "enterprise" => Ok(()),
        Some(_) => Err(ApiError::field(
            "customer_id",
            "is not an enterprise customer",
        )),
        None => Err(ApiError::NotFound("customer".into())),
    }
}

/// An enterprise's members; the caller has checked the enterprise is in scope.
fn of_enterprise(customer_id: &str) -> Sql {
    let mut sql = Sql::new("enterprise_members m WHERE m.customer_id = ");
    sql.bind(customer_id);
    sql
}

crate::entity! { Member in "enterprise_members" as m, kind "enterprise_member", noun "member",
unique "msisdn", owner customer_id, soft deleted_at;
update name, msisdn, department, title, email, status;
stamp updated_at; insert customer_id, created_at }

crate::crud_handlers! { Member in CrmState, tag "customers", routes router;
    |p, id, conn| from of_enterprise(&id), read p.require(Permission::ReadCustomers),
        write p.require(Permission::WriteCustomers), parent enterprise(conn, &p, &id);
    list "/api/v1/customers/{id}/members", SPEC, search ["m.name", "m.department"],
        (("id" = String, Path), ("msisdn" = Option<String>, Query),
        ("department" = Option<String>, Query), ("status" = Option<String>, Query),
        ("q" = Option<String>, Query, description = "substring of name or department"));
    create "/api/v1/customers/{id}/members", NewMember, (("id" = String, Path)),
        responses((status = 400), (status = 409));
    read "/api/v1/customers/{id}/members/{member_id}",
        (("id" = String, Path), ("member_id" = String, Path));
    update "/api/v1/customers/{id}/members/{member_id}", MemberPatch,
        (("id" = String, Path), ("member_id" = String, Path));
    /// Removes a member softly (enrolling the number again brings the record back); audited.
    remove "/api/v1/customers/{id}/members/{member_id}",
        (("id" = String, Path), ("member_id" = String, Path));
}

impl crud::Editable for Member {
    type Patch = MemberPatch;

    fn validate(&self) -> Result<(), ApiError> {
        validate(self)
    }

    /// A new number must be a line the caller's enterprise has.
    async fn check_in(
        &self,
        conn: &mut AnyConnection,
        p: &Principal,
        before: &Self,
    ) -> Result<(), ApiError> {
        if self.msisdn != before.msisdn {
            check_own_line(conn, p, &self.msisdn).await?;
        }
        Ok(())
    }
}

impl crud::CreatableIn for Member {
    type New = NewMember;

    fn build_in(enterprise: &str, req: NewMember, _: &Principal) -> Result<Member, ApiError> {
        let m = build(enterprise, req);
        validate(&m)?;
        Ok(m)
    }

    async fn check_new(&self, conn: &mut AnyConnection, p: &Principal) -> Result<(), ApiError> {
        check_own_line(conn, p, &self.msisdn).await
    }

    /// A number removed from the group and enrolled again brings its record back (same id,
    /// next version): the number stays one row, and its history one trail.
    async fn removed(&self, conn: &mut AnyConnection) -> Result<Option<Member>, ApiError> {
        let number = with_number(&self.customer_id, &self.msisdn);
        Ok(entity::removed(conn, number).await?)
    }

    fn revive(self, removed: &Member) -> Member {
        revive(removed, self)
    }
}

/// A new member of `enterprise` from the request, before [`validate`].
pub(crate) fn build(enterprise: &str, req: NewMember) -> Member {
    Member {
        customer_id: enterprise.to_string(),
        ..req.into_record()
    }
}

/// `m` as the next life of the `removed` record of its number: same id, its version and
/// creation time, for `crud::restore`.
pub(crate) fn revive(removed: &Member, m: Member) -> Member {
    Member {
        id: removed.id.clone(),
        version: removed.version,
        created_at: removed.created_at.clone(),
        ..m
    }
}

/// The fields a patch gives, applied.
pub(crate) fn apply(mut m: Member, patch: MemberPatch) -> Member {
    crud::Editable::apply(&mut m, patch);
    m
}

/// The enterprise's members with `msisdn` (one live, or removed ones): `entity::find` reads
/// the live one, `entity::removed` a removed one.
pub(crate) fn with_number(enterprise: &str, msisdn: &str) -> Sql {
    let mut from = of_enterprise(enterprise);
    from.push(" AND m.msisdn = ").bind(msisdn);
    from
}
