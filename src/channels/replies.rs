//! Replies to offers: a subscriber answers an SMS ("reply Y to buy") and the answer closes the
//! loop on the offer it answers, the newest live one sent to that number on that channel.
//! Keywords are the ones operators print in their texts, in English and Chinese; anything
//! else is kept out of the offers (logged), since guessing would record answers nobody gave.
//! A stop word ("TD", which Chinese operators print as 回复TD退订, or "STOP") withdraws the
//! subscriber's marketing consent for the channel, wherever [`OptOuts`] records it, and
//! declines the offer it answers.

use std::sync::{Arc, OnceLock};

use chrono::Utc;

use super::Reply;
use crate::pipeline::{RecQuery, RecStore};
pub use crate::ports::OptOuts;
use crate::ports::Status;

/// The [`OptOuts`] of an instance, set once the CRM is up (it is built after the channels).
pub type OptOutsSlot = Arc<OnceLock<Arc<dyn OptOuts>>>;

/// Whether a reply is a stop word: the subscriber wants no more marketing on this channel.
pub fn opts_out(text: &str) -> bool {
    let t = text.trim().trim_end_matches(['.', '!', '。', '！']).trim();
    matches!(
        t.to_uppercase().as_str(),
        "TD" | "T" | "STOP" | "UNSUBSCRIBE" | "退订" | "退定"
    )
}

/// What a reply did.
#[derive(Debug, Default, PartialEq)]
pub struct Answered {
    /// The offer it answered.
    pub recommendation_id: Option<String>,
    /// It was a stop word and the refusal is recorded.
    pub opted_out: bool,
}

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
/// number on that channel and not expired; a stop word also goes to `opt_outs` (first, so
/// the refusal holds even when there is no offer to answer).
pub async fn answer(
    store: &RecStore,
    opt_outs: Option<&dyn OptOuts>,
    reply: &Reply,
) -> anyhow::Result<Answered> {
    let stop = opts_out(&reply.text);
    let mut done = Answered::default();
    if stop {
        match opt_outs {
            Some(o) => {
                done.opted_out = o
                    .opt_out(reply.from, &reply.channel, reply.text.trim())
                    .await?;
                if !done.opted_out {
                    tracing::info!(channel = %reply.channel, from = %reply.from, "a stop word from a number no customer has; nothing to record it on");
                }
            }
            None => {
                tracing::warn!(channel = %reply.channel, from = %reply.from, "a stop word, and no record of consents to write it to")
            }
        }
    }
    let outcome = if stop {
        Status::Declined
    } else if let Some(o) = interpret(&reply.text) {
        o
    } else {
        tracing::info!(channel = %reply.channel, from = %reply.from, "a reply that is not an answer to an offer; not recorded");
        return Ok(done);
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
        return Ok(done);
    };
    let why = format!("reply: {}", reply.text.trim());
    let actor = format!("{}:{}", reply.channel, reply.from);
    store.answer(&rec, outcome, &actor, Some(&why)).await?;
    done.recommendation_id = Some(rec.id);
    Ok(done)
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

    #[test]
    fn stop_words_in_english_and_chinese() {
        for stop in [
            "TD",
            "td",
            " T ",
            "STOP",
            "Stop!",
            "unsubscribe",
            "退订",
            "退订。",
        ] {
            assert!(opts_out(stop), "{stop}");
        }
        for other in ["", "N", "不要", "TD please", "STOPP", "Y", "取消"] {
            assert!(!opts_out(other), "{other}");
        }
    }
}
