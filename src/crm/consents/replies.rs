//! A subscriber's stop word ("TD", "STOP", "退订" in reply to an SMS) recorded as what it is:
//! the customer's refusal of marketing on that channel, like one taken at the hotline.
//! The channels hear the word; this is the record they hand it to (`channels::replies`).

use anyhow::Context;

use super::{opt_out_change, refusals, Consent, Row, COLUMNS};
use crate::audit;
use crate::crm::profiles::changes::emit_for_customer;
use crate::crm::workflow;
use crate::crm::CrmState;
use crate::crud;
use crate::event::Msisdn;
use crate::ports::OptOuts;
use crate::store::{entity, new_id, now_text, Entity, Sql};

/// Stop words written as consents: marketing on the channel, refused, sourced to the reply.
pub struct ConsentOptOuts(pub CrmState);

#[async_trait::async_trait]
impl OptOuts for ConsentOptOuts {
    async fn opt_out(&self, msisdn: Msisdn, channel: &str, said: &str) -> anyhow::Result<bool> {
        let st = &self.0;
        let number = msisdn.to_string();
        let mut sql = Sql::new("SELECT customer_id FROM lines WHERE msisdn = ");
        sql.bind(number.as_str()).push(" AND deleted_at IS NULL");
        let customer: Option<(String,)> = sql
            .query_as()
            .fetch_optional(&st.db.pool)
            .await
            .context("finding the customer of a number that replied with a stop word")?;
        let Some((customer_id,)) = customer else {
            return Ok(false);
        };
        // The words are the subscriber's; kept short, as any consent's source.
        let source: String = format!("{channel} reply: {said}")
            .chars()
            .take(64)
            .collect();
        let who = crate::crm::notices::system(&format!("{channel}-reply"));
        let mut tx = crate::store::begin_write(&st.db)
            .await
            .context("opening the consent write")?;
        let old = refusals(&mut tx, &customer_id).await?;
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM consents k WHERE k.customer_id = "
        ));
        sql.bind(customer_id.as_str())
            .push(" AND k.channel = ")
            .bind(channel)
            .push(" AND k.purpose = 'marketing'");
        let before: Option<Consent> = sql
            .query_as::<Row>()
            .fetch_optional(&mut *tx)
            .await
            .context("reading the customer's consent")?
            .map(Into::into);
        let now = now_text();
        match before {
            // Refused already: the word changes nothing.
            Some(b) if !b.granted => return Ok(true),
            Some(before) => {
                let mut after = before.clone();
                after.granted = false;
                after.source = Some(source);
                after.next_version(now);
                // Not checked: a refusal stands whatever changed the consent meanwhile.
                entity::update(&mut tx, &after, before.version)
                    .await
                    .context("withdrawing the consent")?;
                let change = workflow::change("update", Some(&before), &after);
                audit::record(&mut tx, &who, change)
                    .await
                    .context("auditing the withdrawn consent")?;
            }
            None => {
                let c = Consent {
                    id: new_id(),
                    customer_id: customer_id.clone(),
                    channel: channel.to_string(),
                    purpose: "marketing".into(),
                    granted: false,
                    source: Some(source),
                    updated_at: now,
                    version: 1,
                };
                crud::insert_in(&mut tx, &who, &c)
                    .await
                    .context("recording the refusal")?;
            }
        }
        let new = refusals(&mut tx, &customer_id).await?;
        tx.commit().await.context("committing the refusal")?;
        // The engine hears of it as of any consent change: marketing on the channel stops.
        emit_for_customer(st, &customer_id, opt_out_change(old, new)).await;
        Ok(true)
    }
}
