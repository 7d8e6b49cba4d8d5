//! The CRM side of the engine seam: [`CrmProfiles`] answers `ProfileSource::load`,
//! [`CrmLineScope`] answers `LineScope::may_see` from customer ownership, and [`changes`]
//! tells the engine when profile facts move.

pub mod changes;

use std::collections::{BTreeMap, HashMap};

use smol_str::SmolStr;

use crate::auth::{Principal, Scope};
use crate::event::Msisdn;
use crate::ports::{LineScope, PortError, Profile, ProfileSource};
use crate::store::Db;

/// Consent purpose whose refusals become `Profile::opt_outs`.
pub const MARKETING: &str = "marketing";
/// Consent purpose whose refusals become the `service_opt_outs` fact: the channels mandatory
/// service messages may not use (a marketing refusal does not stop those).
pub const SERVICE: &str = "service";

pub struct CrmProfiles {
    pub db: Db,
}

#[derive(sqlx::FromRow)]
struct Row {
    msisdn: String,
    plan: String,
    line_status: String,
    activated_at: String,
    customer_id: String,
    customer_type: String,
    parent_customer_id: Option<String>,
    region_id: Option<String>,
    value_tier: String,
    arpu_cents: i64,
    home_country: String,
    language: String,
    segment: String,
    industry: Option<String>,
    credit_class: String,
    churn_score: f64,
    timezone: String,
    loyalty_points: i64,
    customer_status: String,
    account_state: Option<String>,
    opt_out: Option<String>,
    opt_out_purpose: Option<String>,
}

fn tenure_months(activated_at: &str, now: chrono::DateTime<chrono::Utc>) -> i64 {
    chrono::DateTime::parse_from_rfc3339(activated_at)
        .map(|t| ((now - t.with_timezone(&chrono::Utc)).num_days() / 30).max(0))
        .unwrap_or(0)
}

fn profile(r: &Row, now: chrono::DateTime<chrono::Utc>) -> Profile {
    let mut extra = BTreeMap::new();
    extra.insert("customer_type".into(), r.customer_type.clone().into());
    extra.insert("line_status".into(), r.line_status.clone().into());
    extra.insert("loyalty_points".into(), r.loyalty_points.into());
    extra.insert("customer_status".into(), r.customer_status.clone().into());
    if let Some(a) = &r.account_state {
        extra.insert("account_state".into(), a.clone().into());
    }
    if let Some(p) = &r.parent_customer_id {
        extra.insert("enterprise_id".into(), p.clone().into());
    }
    if let Some(ind) = &r.industry {
        extra.insert("industry".into(), ind.clone().into());
    }
    if let Some(reg) = &r.region_id {
        extra.insert("region_id".into(), reg.clone().into());
    }
    Profile {
        known: true,
        customer_id: Some(r.customer_id.clone()),
        value_tier: r.value_tier.as_str().into(),
        arpu_cents: r.arpu_cents,
        plan: r.plan.as_str().into(),
        home_country: r.home_country.as_str().into(),
        language: r.language.as_str().into(),
        segment: r.segment.as_str().into(),
        tenure_months: tenure_months(&r.activated_at, now),
        credit_class: r.credit_class.as_str().into(),
        churn_score: r.churn_score,
        opt_outs: Vec::new(),
        timezone: r.timezone.as_str().into(),
        extra,
    }
}

#[async_trait::async_trait]
impl ProfileSource for CrmProfiles {
    async fn load(&self, msisdns: &[Msisdn]) -> Result<Vec<Option<Profile>>, PortError> {
        if msisdns.is_empty() {
            return Ok(Vec::new());
        }
        // One query per call: lines joined to customers, plus one row per marketing opt-out.
        let mut sql = crate::store::Sql::for_db(
            self.db.kind,
            "SELECT l.msisdn, l.plan, l.status AS line_status, l.activated_at, \
             c.id AS customer_id, c.customer_type, c.parent_customer_id, c.region_id, \
             c.value_tier, c.arpu_cents, c.home_country, c.language, c.segment, c.industry, c.credit_class, \
             c.churn_score, c.timezone, c.loyalty_points, c.status AS customer_status, \
             a.state AS account_state, k.channel AS opt_out, k.purpose AS opt_out_purpose \
             FROM lines l JOIN customers c ON c.id = l.customer_id \
             LEFT JOIN accounts a ON a.id = l.account_id \
             LEFT JOIN consents k ON k.customer_id = c.id AND k.granted = 0 AND k.purpose IN (",
        );
        sql.bind(MARKETING)
            .push(", ")
            .bind(SERVICE)
            .push(") WHERE l.deleted_at IS NULL AND c.deleted_at IS NULL AND l.msisdn IN (");
        let mut unique: Vec<String> = msisdns.iter().map(|m| m.to_string()).collect();
        unique.sort();
        unique.dedup();
        for (i, m) in unique.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(m.as_str());
        }
        sql.push(") ORDER BY l.msisdn, k.channel");
        let rows: Vec<Row> = sql
            .query_as()
            .fetch_all(&self.db.pool)
            .await
            .map_err(|e| PortError::Storage(e.to_string()))?;
        let now = chrono::Utc::now();
        let mut by_msisdn: HashMap<String, Profile> = HashMap::new();
        for r in &rows {
            let p = by_msisdn
                .entry(r.msisdn.clone())
                .or_insert_with(|| profile(r, now));
            match (&r.opt_out, r.opt_out_purpose.as_deref()) {
                (Some(ch), Some(SERVICE)) => {
                    let list = p
                        .extra
                        .entry("service_opt_outs".into())
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                    if let Some(a) = list.as_array_mut() {
                        a.push(ch.as_str().into());
                    }
                }
                (Some(ch), _) => p.opt_outs.push(SmolStr::new(ch)),
                (None, _) => {}
            }
        }
        for (m, codes) in owned_offers(&self.db, &unique)
            .await
            .map_err(|e| PortError::Storage(e.to_string()))?
        {
            if let Some(p) = by_msisdn.get_mut(&m) {
                p.extra.insert("owned_offers".into(), codes.into());
            }
        }
        Ok(msisdns
            .iter()
            .map(|m| by_msisdn.get(&m.to_string()).cloned())
            .collect())
    }
}

/// Subscription statuses under which a line has the offering (ordered, running or paused):
/// offering it again would be offering what they have.
const OWNED: &[&str] = &["created", "pendingActive", "active", "suspended"];

/// The offering codes each line has: its own subscriptions and its customer's that belong
/// to no one line, by msisdn (lines with none are left out).
pub async fn owned_offers(
    db: &Db,
    msisdns: &[String],
) -> Result<BTreeMap<String, Vec<String>>, sqlx::Error> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if msisdns.is_empty() {
        return Ok(out);
    }
    let mut sql = crate::store::Sql::for_db(
        db.kind,
        "SELECT l.msisdn, o.code FROM lines l \
         JOIN subscriptions s ON s.customer_id = l.customer_id \
           AND (s.line_id IS NULL OR s.line_id = l.id) \
         JOIN product_offerings o ON o.id = s.offering_id WHERE s.status IN (",
    );
    for (i, st) in OWNED.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(*st);
    }
    sql.push(") AND l.msisdn IN (");
    for (i, m) in msisdns.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(m.as_str());
    }
    sql.push(") ORDER BY l.msisdn, o.code");
    let rows: Vec<(String, String)> = sql.query_as().fetch_all(&db.pool).await?;
    for (m, code) in rows {
        let codes = out.entry(m).or_default();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(out)
}

/// The opt-out list of a customer, as `Profile::opt_outs` shows it.
pub async fn opt_outs(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    refusals(conn, customer_id, MARKETING).await
}

/// The channels a customer refused for `purpose`, in order.
pub async fn refusals(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    purpose: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT channel FROM consents WHERE customer_id = $1 AND purpose = $2 AND granted = 0 \
         ORDER BY channel",
    )
    .bind(customer_id)
    .bind(purpose)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

/// Data scope for lines: a principal sees a line when they see its customer.
pub struct CrmLineScope {
    pub db: Db,
}

#[async_trait::async_trait]
impl LineScope for CrmLineScope {
    async fn may_see(&self, who: &Principal, msisdn: Msisdn) -> Result<bool, PortError> {
        if who.scope == Scope::All {
            return Ok(true);
        }
        let mut sql = crate::store::Sql::new(
            "SELECT COUNT(*) FROM lines l JOIN customers c ON c.id = l.customer_id \
             WHERE l.deleted_at IS NULL AND l.msisdn = ",
        );
        sql.bind(msisdn.to_string());
        crate::crm::scope::push_customer_scope(&mut sql, who, "c");
        let (n,): (i64,) = sql
            .query_as()
            .fetch_one(&self.db.pool)
            .await
            .map_err(|e| PortError::Storage(e.to_string()))?;
        Ok(n > 0)
    }
}
