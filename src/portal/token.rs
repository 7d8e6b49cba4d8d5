//! Portal session tokens: `kps1.{msisdn}.{expires_unix}.{hmac}`. The operator's portal backend
//! mints one for a logged-in customer; the customer's browser presents it. HMAC-SHA256 over
//! the msisdn and the expiry under a key only Kairos holds, so a token cannot be made for
//! another number or stretched past its expiry, and nothing needs storing to check one.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::event::Msisdn;
use crate::store::Db;

const PREFIX: &str = "kps1";

/// The row in `app_secrets` holding the generated key.
const SECRET_NAME: &str = "portal_session";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token, or not signed by this key.
    Invalid,
    Expired,
}

fn mac(secret: &str, msisdn: &str, expires: i64) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    // Domain-separated from the other things the product signs.
    m.update(b"portal-session\0");
    m.update(msisdn.as_bytes());
    m.update(b".");
    m.update(expires.to_string().as_bytes());
    m
}

/// A token for `msisdn` valid until `expires_at`.
pub fn mint(secret: &str, msisdn: Msisdn, expires_at: DateTime<Utc>) -> String {
    let m = msisdn.to_string();
    let exp = expires_at.timestamp();
    let sig = hex::encode(mac(secret, &m, exp).finalize().into_bytes());
    format!("{PREFIX}.{m}.{exp}.{sig}")
}

/// The msisdn a token opens, when it is signed by `secret` and not expired at `now`.
pub fn verify(secret: &str, token: &str, now: DateTime<Utc>) -> Result<Msisdn, TokenError> {
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(m), Some(exp), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Invalid);
    };
    let exp: i64 = exp.parse().map_err(|_| TokenError::Invalid)?;
    let sig = hex::decode(sig).map_err(|_| TokenError::Invalid)?;
    // The signature first: an expired token says nothing until it is known to be ours.
    mac(secret, m, exp)
        .verify_slice(&sig)
        .map_err(|_| TokenError::Invalid)?;
    if now.timestamp() >= exp {
        return Err(TokenError::Expired);
    }
    Msisdn::parse(m).map_err(|_| TokenError::Invalid)
}

/// The signing key (configured, else generated once into the database).
pub async fn secret(db: &Db, configured: &str) -> Result<String, sqlx::Error> {
    crate::store::app_secret(db, SECRET_NAME, configured).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Msisdn {
        Msisdn::parse(s).unwrap()
    }

    #[test]
    fn a_token_opens_its_own_number_until_it_expires() {
        let now = Utc::now();
        let t = mint("k", m("8613900000001"), now + chrono::Duration::minutes(5));
        assert_eq!(verify("k", &t, now), Ok(m("8613900000001")));
        assert_eq!(
            verify("k", &t, now + chrono::Duration::minutes(6)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn edited_or_foreign_tokens_are_invalid() {
        let now = Utc::now();
        let exp = now + chrono::Duration::minutes(5);
        let t = mint("k", m("8613900000001"), exp);
        assert_eq!(verify("other", &t, now), Err(TokenError::Invalid));
        let other_number = t.replace("8613900000001", "8613900000002");
        assert_eq!(verify("k", &other_number, now), Err(TokenError::Invalid));
        let later = t.replace(
            &exp.timestamp().to_string(),
            &(exp.timestamp() + 3600).to_string(),
        );
        assert_eq!(verify("k", &later, now), Err(TokenError::Invalid));
        for junk in [
            "",
            "kps1",
            "kps1.1.2",
            "kps1.a.b.c.d",
            "x.8613900000001.1.00",
        ] {
            assert_eq!(verify("k", junk, now), Err(TokenError::Invalid), "{junk}");
        }
    }
}
