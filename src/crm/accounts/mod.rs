//! `/accounts`: billing accounts of customers (TMF666).

pub mod repo;

use sqlx::AnyConnection;

pub use repo::{Account, AccountPatch, NewAccount};

use crate::auth::{Permission, Principal};
use crate::crm::customers::repo::owned;
use crate::crm::scope::require_named_customer;
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::ApiError;
use crate::store::{ListSpec, Page};

const SPEC: ListSpec = crate::list_spec!(a; text customer_id, state, account_type;
    sort created_at, name, balance_cents; default "a.created_at");

pub(crate) fn validate(a: &Account) -> Result<(), ApiError> {
    validate::text("name", &a.name, 200)?;
    validate::one_of("account_type", &a.account_type, &["billing", "settlement"])?;
    validate::one_of("state", &a.state, &["active", "suspended", "closed"])?;
    validate::opt_text("payment_method", a.payment_method.as_deref(), 32)?;
    if let Some(d) = a.bill_cycle_day {
        if !(1..=28).contains(&d) {
            return Err(ApiError::field(
                "bill_cycle_day",
                "must be between 1 and 28",
            ));
        }
    }
    if a.currency.len() != 3 || !a.currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::field(
            "currency",
            "must be an ISO 4217 code such as CNY",
        ));
    }
    validate::non_negative("credit_limit_cents", a.credit_limit_cents)
}

impl crud::Editable for Account {
    type Patch = AccountPatch;

    fn validate(&self) -> Result<(), ApiError> {
        validate(self)
    }
}

impl crud::Creatable for Account {
    type New = NewAccount;

    fn build(req: NewAccount, _: &Principal) -> Result<Account, ApiError> {
        let a = req.into_record();
        validate(&a)?;
        Ok(a)
    }

    async fn check_new(&self, conn: &mut AnyConnection, p: &Principal) -> Result<(), ApiError> {
        require_named_customer(conn, p, &self.customer_id).await
    }
}

crate::crud_handlers! { Account in CrmState, tag "accounts", routes router;
    |p| from owned::<Account>(&p), read p.require(Permission::ReadCustomers),
        write crate::crm::scope::require_operator_write(&p);
    list "/api/v1/accounts", SPEC, (("customer_id" = Option<String>, Query),
        ("state" = Option<String>, Query), ("account_type" = Option<String>, Query));
    create "/api/v1/accounts", NewAccount, responses((status = 400));
    read "/api/v1/accounts/{id}", (("id" = String, Path));
    update "/api/v1/accounts/{id}", AccountPatch, (("id" = String, Path));
}
