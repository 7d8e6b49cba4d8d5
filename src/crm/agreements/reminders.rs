//! The contract renewal reminder job (合同到期提醒).
//!
//! [`run_once`] finds active agreements whose end is within their `reminder_days` (and not in
//! the past) that were not yet reminded for their current end date, and for each:
//! - leaves an in-app notice for the customer's account manager (`GET /api/v1/notices`) and,
//!   when the manager has a phone number (`users.phone`), sends them an SMS through the
//!   engine (`offers.propose`, channel `sms`, `rule_id = "contract-reminder"`) after the
//!   commit; without a phone the notice alone is sent;
//! - emits a `contract_expiring` event (`contract_id`, `contract_name`, `end_date`,
//!   `days_left`), id `contract-<id>-<end date>`, so rules can remind and offer a renewal. It
//!   is addressed to the customer's contract contact (a phone contact with role `contract`);
//!   an individual without one gets it on their own first active line; an enterprise without
//!   one gets none (its lines are its employees', not the party that signs), and the run says
//!   so;
//! - sets `reminded_for` to the end date, with an audit record (`action = "remind"`).
//!
//! The claim (a versioned update, so concurrent runs cannot both win), notice and audit record
//! share one transaction; the event is submitted after it commits (no write lock held while the
//! engine applies backpressure). If the engine refuses it, the mark is taken back so the next
//! run retries (repeating the notice); otherwise a second run never emits again. Extending
//! `end_date` starts a new period that reminds again.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use smol_str::SmolStr;

use super::repo::{self, Agreement};
use crate::audit::{self, snapshot, Change};
use crate::crm::notices::{self, NewNotice};
use crate::crm::CrmState;
use crate::event::{AttrValue, Attrs, Event, EventType, Known, Msisdn};
use crate::ports::OfferRequest;
use crate::store::Sql;

/// One reminder sent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reminder {
    pub agreement_id: String,
    pub customer_id: String,
    pub end_date: String,
    pub days_left: i64,
    /// The account manager notified, if the customer has one.
    pub notified_user_id: Option<String>,
    /// The `contract_expiring` event emitted, if the customer has somewhere to get it.
    pub event_id: Option<String>,
    /// The number it was addressed to: `contract_contact` or `own_line` in `addressed`.
    pub event_msisdn: Option<String>,
    /// `contract_contact`, `own_line`, or `none` (an enterprise without a contract contact).
    pub addressed: &'static str,
    /// Whether an SMS to the manager's phone was handed to the engine.
    pub sms_requested: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReminderRun {
    pub reminded: Vec<Reminder>,
}

/// Days from `now`'s (UTC) date to `end`; `None` when `end` is not a date.
pub fn days_left(end: &str, now: DateTime<Utc>) -> Option<i64> {
    let end = NaiveDate::parse_from_str(end, "%Y-%m-%d").ok()?;
    Some((end - now.date_naive()).num_days())
}

/// Whether `a` is due for its renewal reminder at `now`.
pub fn due(a: &Agreement, now: DateTime<Utc>) -> Option<i64> {
    if a.status != "active" || a.reminded_for.as_deref() == Some(a.end_date.as_str()) {
        return None;
    }
    let d = days_left(&a.end_date, now)?;
    (0..=a.reminder_days).contains(&d).then_some(d)
}

pub fn event_id(a: &Agreement) -> String {
    format!("contract-{}-{}", a.id, a.end_date)
}

/// Puts `reminded_for` back so the next run retries the event (the notice may repeat).
async fn unmark(st: &CrmState, before: &Agreement, version: i64) {
    let mut sql = Sql::new("UPDATE agreements SET reminded_for = ");
    sql.bind(before.reminded_for.clone())
        .push(", version = version + 1 WHERE id = ")
        .bind(before.id.as_str())
        .push(" AND version = ")
        .bind(version);
    let r = match st.db.pool.acquire().await {
        Ok(mut conn) => sql.execute(&mut conn).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        tracing::warn!(error = %e, agreement = %before.id, "could not unmark the reminder");
    }
}

/// Where the customer's side of a reminder goes: the contract contact's phone, else an
/// individual's own first active line; an enterprise without a contract contact gets none.
async fn addressee(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> anyhow::Result<(Option<Msisdn>, &'static str)> {
    let contact = crate::crm::contacts::repo::contract_phone(&mut *conn, customer_id).await?;
    if let Some(m) = contact.as_deref().and_then(|p| Msisdn::parse(p).ok()) {
        return Ok((Some(m), "contract_contact"));
    }
    let own: Option<(String,)> = sqlx::query_as(
        "SELECT l.msisdn FROM customers c JOIN lines l ON l.customer_id = c.id \
         WHERE c.id = $1 AND c.customer_type = 'individual' AND l.status = 'active' \
         AND l.deleted_at IS NULL ORDER BY l.activated_at, l.msisdn LIMIT 1",
    )
    .bind(customer_id)
    .fetch_optional(conn)
    .await?;
    Ok(match own.and_then(|(m,)| Msisdn::parse(&m).ok()) {
        Some(m) => (Some(m), "own_line"),
        None => (None, "none"),
    })
}

/// Runs the job once at `now`.
pub async fn run_once(st: &CrmState, now: DateTime<Utc>) -> anyhow::Result<ReminderRun> {
    let today = now.date_naive().format("%Y-%m-%d").to_string();
    let mut sql = Sql::new(&format!(
        "SELECT {} FROM agreements g WHERE g.status = 'active' \
         AND (g.reminded_for IS NULL OR g.reminded_for <> g.end_date) AND g.end_date >= ",
        repo::COLUMNS
    ));
    sql.bind(today).push(" ORDER BY g.end_date, g.id");
    let candidates: Vec<Agreement> = sql.query_as().fetch_all(&st.db.pool).await?;
    let actor = notices::system("contract-reminder");
    let mut run = ReminderRun::default();
    for before in candidates {
        let Some(days) = due(&before, now) else {
            continue;
        };
        let mut tx = crate::store::begin_write(&st.db).await?;
        let mut after = before.clone();
        after.reminded_for = Some(before.end_date.clone());
        after.updated_at = crate::store::ts_text(now);
        if !crate::store::entity::update(&mut tx, &after, before.version).await? {
            // Changed meanwhile (or another run got it): the next run looks again.
            continue;
        }
        after.version += 1;
        let mgr: Option<(String, Option<String>, String)> = sqlx::query_as(
            "SELECT u.id, u.phone, c.name FROM customers c JOIN users u ON u.id = c.account_manager_id \
             WHERE c.id = $1",
        )
        .bind(&before.customer_id)
        .fetch_optional(&mut *tx)
        .await?;
        let manager = mgr.as_ref().map(|m| m.0.clone());
        if let Some(user) = &manager {
            notices::notify(
                &mut tx,
                NewNotice {
                    user_id: user,
                    kind: "contract_reminder",
                    title: format!("Contract {} ends in {days} days", before.name),
                    body: format!(
                        "Contract \"{}\" ends on {}; contact the customer about renewal.",
                        before.name, before.end_date
                    ),
                    entity: "agreement",
                    entity_id: &before.id,
                    customer_id: Some(&before.customer_id),
                },
            )
            .await?;
        }
        audit::record(
            &mut tx,
            &actor,
            Change {
                entity: "agreement",
                entity_id: &before.id,
                action: "remind",
                customer_id: Some(&before.customer_id),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let (to, addressed) = addressee(&mut tx, &before.customer_id).await?;
        tx.commit().await?;
        let mut event = None;
        if let Some(msisdn) = to {
            let mut attrs = Attrs::default();
            attrs.insert("contract_id", AttrValue::Str(before.id.as_str().into()));
            // What a customer reads: the contract's name and end, never its id.
            attrs.insert("contract_name", AttrValue::Str(before.name.as_str().into()));
            attrs.insert("days_left", AttrValue::Int(days));
            attrs.insert("end_date", AttrValue::Str(before.end_date.as_str().into()));
            let ev = Event {
                id: SmolStr::new(event_id(&before)),
                kind: EventType::Known(Known::ContractExpiring),
                msisdn,
                ts: now.fixed_offset(),
                attrs,
            };
            let id = ev.id.to_string();
            // After the commit, so no write lock is held while the engine applies backpressure.
            match st.events.submit(vec![ev]).await {
                Ok(()) => event = Some(id),
                Err(e) => {
                    tracing::warn!(error = %e, agreement = %before.id, "contract_expiring not delivered; will retry");
                    unmark(st, &before, after.version).await;
                }
            }
        }
        let mut sms_requested = false;
        if let Some((_, Some(phone), customer)) = &mgr {
            match Msisdn::parse(phone) {
                Ok(to) => {
                    let req = OfferRequest {
                        msisdn: to,
                        campaign_id: None,
                        request_id: None,
                        rule_id: "contract-reminder".into(),
                        offer_code: "CONTRACT_RENEWAL".into(),
                        message: format!(
                            "Contract \"{}\" of {customer} ends on {} ({days} days).",
                            before.name, before.end_date
                        ),
                        channels: vec!["sms".into()],
                        score: 1.0,
                        valid_for_secs: 7 * 86_400,
                        at: now.fixed_offset(),
                        control_bp: None,
                        // A notice to our own staff: never held by marketing caps.
                        service: true,
                    };
                    // The notice is already committed: a failed SMS is logged, not retried.
                    match st.offers.propose(vec![req]).await {
                        Ok(_) => sms_requested = true,
                        Err(e) => tracing::warn!(error = %e, "contract reminder SMS not sent"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "account manager phone is not an msisdn"),
            }
        }
        run.reminded.push(Reminder {
            agreement_id: before.id.clone(),
            customer_id: before.customer_id.clone(),
            end_date: before.end_date.clone(),
            days_left: days,
            notified_user_id: manager,
            event_id: event,
            event_msisdn: to.map(|m| m.to_string()),
            addressed,
            sms_requested,
        });
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(end: &str, days: i64, reminded: Option<&str>) -> Agreement {
        Agreement {
            id: "a1".into(),
            customer_id: "c1".into(),
            name: "n".into(),
            agreement_type: "service".into(),
            status: "active".into(),
            start_date: "2026-01-01".into(),
            end_date: end.into(),
            reminder_days: days,
            document_ref: None,
            amount_cents: 0,
            reminded_for: reminded.map(str::to_string),
            created_at: String::new(),
            updated_at: String::new(),
            version: 1,
        }
    }

    #[test]
    fn due_inside_the_threshold_once_per_end_date() {
        let now = "2026-11-23T10:00:00Z".parse().unwrap();
        assert_eq!(due(&agreement("2026-12-23", 30, None), now), Some(30));
        assert_eq!(due(&agreement("2026-12-24", 30, None), now), None);
        assert_eq!(due(&agreement("2026-11-22", 30, None), now), None);
        assert_eq!(
            due(&agreement("2026-12-01", 30, Some("2026-12-01")), now),
            None
        );
        assert_eq!(
            due(&agreement("2026-12-01", 30, Some("2025-12-01")), now),
            Some(8)
        );
    }
}
