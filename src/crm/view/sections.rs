//! One function per section of the 360 view. CRM sections read the database; engine sections
//! (usage, offers) call the engine's ports.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth::Principal;
use crate::crm::customers::Customer;
use crate::crm::lines::Line;
use crate::crm::CrmState;
use crate::event::Msisdn;
use crate::ports::Recommendation;

/// Lines whose engine data (usage, offers) the view fetches: bounds the fan-out for
/// enterprises with thousands of lines.
pub const ENGINE_LINES: usize = 20;
pub const OFFERS_PER_LINE: usize = 10;
pub const MAX_OFFERS: usize = 20;

/// What every section function gets.
pub struct ViewContext<'a> {
    pub st: &'a CrmState,
    pub principal: &'a Principal,
    pub customer: &'a Customer,
    pub lines: &'a [Line],
}

fn engine_lines(lines: &[Line]) -> impl Iterator<Item = Msisdn> + '_ {
    lines
        .iter()
        .filter_map(|l| Msisdn::parse(&l.msisdn).ok())
        .take(ENGINE_LINES)
}

/// Real-time usage aggregates the engine keeps, per msisdn.
pub async fn usage(cx: &ViewContext<'_>) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for m in engine_lines(cx.lines) {
        let u = cx.st.offers.usage(m).await.map_err(|e| e.to_string())?;
        out.insert(m.to_string(), u);
    }
    Ok(out)
}

/// The engine's recent offers across the customer's lines, newest first.
pub async fn offers(cx: &ViewContext<'_>) -> Result<Vec<Recommendation>, String> {
    let mut all = Vec::new();
    for m in engine_lines(cx.lines) {
        let recs = cx
            .st
            .offers
            .offers_for(m, OFFERS_PER_LINE)
            .await
            .map_err(|e| e.to_string())?;
        all.extend(recs);
    }
    all.sort_by_key(|r| std::cmp::Reverse(r.decided_at));
    all.truncate(MAX_OFFERS);
    Ok(all)
}

/// Runs a database section on its own connection, as JSON values.
async fn db_section<T, F>(cx: &ViewContext<'_>, f: F) -> Result<Vec<Value>, String>
where
    T: serde::Serialize,
    F: for<'c> FnOnce(
        &'c mut sqlx::AnyConnection,
        &'c str,
    ) -> futures::future::BoxFuture<'c, Result<Vec<T>, sqlx::Error>>,
{
    let mut conn = cx.st.db.pool.acquire().await.map_err(|e| e.to_string())?;
    let rows = f(&mut conn, &cx.customer.id)
        .await
        .map_err(|e| e.to_string())?;
    rows.into_iter()
        .map(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
        .collect()
}

/// Open service requests, newest first.
pub async fn open_requests(cx: &ViewContext<'_>) -> Result<Vec<Value>, String> {
    db_section(cx, |c, id| {
        Box::pin(crate::crm::service_requests::repo::open_for_customer(c, id))
    })
    .await
}

/// Open sales opportunities, newest first.
pub async fn opportunities(cx: &ViewContext<'_>) -> Result<Vec<Value>, String> {
    db_section(cx, |c, id| {
        Box::pin(crate::crm::opportunities::repo::open_for_customer(
            c, id, 20,
        ))
    })
    .await
}

/// Current (draft or active) contracts, soonest end first.
pub async fn contracts(cx: &ViewContext<'_>) -> Result<Vec<Value>, String> {
    db_section(cx, |c, id| {
        Box::pin(crate::crm::agreements::repo::current_for_customer(c, id))
    })
    .await
}

/// The last recorded interactions (TMF683 timeline, database sources; offers have their own
/// section).
pub async fn interactions(cx: &ViewContext<'_>) -> Result<Vec<Value>, String> {
    db_section(cx, |c, id| {
        Box::pin(async move {
            crate::crm::interactions::recent(c, id, None, 10)
                .await
                .map(|(items, _)| items)
        })
    })
    .await
}
