//! Replies to offers: a subscriber answers an SMS ("reply Y to buy") and the answer closes the
//! loop on the offer it answers, the newest live one sent to that number on that channel.
//! Keywords are the ones operators print in their texts, in English and Chinese; anything
//! else is kept out of the offers (logged), since guessing would record answers nobody gave.

use chrono::Utc;

use super::Reply;
use crate::pipeline::{RecQuery, RecStore};
use crate::ports::Status;

/// What a reply's text says about the offer, if anything.
pub fn interpret(text: &str) -> Option<Status> {
    let t = text.trim().trim_end_matches(['.', '!', '。', '！']).trim();
    let upper = t.to_uppercase();
    match upper.as_str() {
        "Y" | "YES" | "OK" | "1" | "是" | "好" | "订购" | "确认" => Some(Status::Accepted),
        "N" | "NO" | "0" | "否" | "不" | "不要" => Some(Status::Declined),
        _ => None,
    }
}

/// Records `reply` as the answer to the newest offer it can answer: sent or delivered to that
/// number on that channel and not expired. Returns the offer's id, or `None` when the text is
/// not an answer or there is nothing to answer.
pub async fn answer(store: &RecStore, reply: &Reply) -> anyhow::Result<Option<String>> {
    let Some(outcome) = interpret(&reply.text) else {
        tracing::info!(channel = %reply.channel, from = %reply.from, "a reply that is not an answer to an offer; not recorded");
        return Ok(None);
    };
    let (recent, _) = store
        .list(&RecQuery {
            msisdn: Some(reply.from),
            channel: Some(reply.channel.clone()),
            limit: 20,
            ..RecQuery::default()
        })
        .await?;
    let now = Utc::now();
    let Some(rec) = recent
        .into_iter()
        .find(|r| matches!(r.status, Status::Sent | Status::Delivered) && r.expires_at > now)
    else {
        tracing::info!(channel = %reply.channel, from = %reply.from, "a reply with no live offer to answer; not recorded");
        return Ok(None);
    };
    let why = format!("reply: {}", reply.text.trim());
    let actor = format!("{}:{}", reply.channel, reply.from);
    store.answer(&rec, outcome, &actor, Some(&why)).await?;
    Ok(Some(rec.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_in_english_and_chinese() {
        for yes in ["Y", "y", " yes ", "YES!", "是", "好。", "订购", "1"] {
            assert_eq!(interpret(yes), Some(Status::Accepted), "{yes}");
        }
        for no in ["N", "no", "否", "不要", "0"] {
            assert_eq!(interpret(no), Some(Status::Declined), "{no}");
        }
        for other in ["", "hello", "Y please call me", "TD", "yess"] {
            assert_eq!(interpret(other), None, "{other}");
        }
    }
}
