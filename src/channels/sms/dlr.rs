//! Signed delivery-report URLs. A Kannel gateway calls back with whatever URL it was given and
//! cannot send a bearer header, so each message's URL carries its own token: HMAC-SHA256 of the
//! message id under a secret. The token proves the caller was handed that URL for that one
//! message; it opens nothing else, and ids (computable offline) are useless without it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::Db;

/// The row in `app_secrets` holding the generated key.
const SECRET_NAME: &str = "sms_dlr";

/// The token for message `id`, as hex.
pub fn token(secret: &str, id: &str) -> String {
    hex::encode(mac(secret, id).finalize().into_bytes())
}

/// True when `presented` is message `id`'s token; compared in constant time.
pub fn verify(secret: &str, id: &str, presented: &str) -> bool {
    match hex::decode(presented) {
        Ok(bytes) => mac(secret, id).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// The token of the incoming-SMS URL (`/api/v1/channels/sms/mo`): one per deployment, under
/// its own domain so it is no message's delivery-report token.
pub fn mo_token(secret: &str) -> String {
    hex::encode(keyed(secret, b"sms-mo\0").finalize().into_bytes())
}

/// True when `presented` is the incoming-SMS token; compared in constant time.
pub fn verify_mo(secret: &str, presented: &str) -> bool {
    match hex::decode(presented) {
        Ok(bytes) => keyed(secret, b"sms-mo\0").verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

fn mac(secret: &str, id: &str) -> Hmac<Sha256> {
    // Domain-separated, so the key could sign other things later without tokens colliding.
    let mut m = keyed(secret, b"sms-dlr\0");
    m.update(id.as_bytes());
    m
}

fn keyed(secret: &str, domain: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    m.update(domain);
    m
}

/// The URL handed to the gateway for message `id`: `{id}` and `{token}` filled in, the token
/// appended when the template does not place it.
pub fn url(template: &str, secret: &str, id: &str) -> String {
    if template.is_empty() {
        return String::new();
    }
    let t = token(secret, id);
    let filled = template.replace("{id}", id);
    if template.contains("{token}") {
        filled.replace("{token}", &t)
    } else {
        let sep = if filled.contains('?') { '&' } else { '?' };
        format!("{filled}{sep}token={t}")
    }
}

/// The signing key (configured, else generated once into the database).
pub async fn secret(db: &Db, configured: &str) -> Result<String, sqlx::Error> {
    crate::store::app_secret(db, SECRET_NAME, configured).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_message_and_key() {
        let t = token("k1", "rec-1");
        assert_eq!(t.len(), 64);
        assert!(verify("k1", "rec-1", &t));
        assert!(!verify("k1", "rec-2", &t));
        assert!(!verify("k2", "rec-1", &t));
        assert!(!verify("k1", "rec-1", &t[..62]));
        assert!(!verify("k1", "rec-1", "not hex"));
        assert!(!verify("k1", "rec-1", ""));
    }

    #[test]
    fn url_places_or_appends_the_token() {
        let t = token("k", "r1");
        assert_eq!(
            url("http://h/dlr?id={id}&t={token}&s=%d", "k", "r1"),
            format!("http://h/dlr?id=r1&t={t}&s=%d")
        );
        assert_eq!(
            url("http://h/dlr?id={id}&s=%d", "k", "r1"),
            format!("http://h/dlr?id=r1&s=%d&token={t}")
        );
        assert_eq!(
            url("http://h/dlr/{id}", "k", "r1"),
            format!("http://h/dlr/r1?token={t}")
        );
        assert_eq!(url("", "k", "r1"), "");
    }
}
