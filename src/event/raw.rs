//! The envelope as it arrives, before validation. Both decoders fill it, the contract-shaped
//! scan (`scan.rs`) and serde (`decode.rs`), and `decode.rs` validates it into an `Event`.

use std::borrow::Cow;

use serde::Deserialize;

use super::Attrs;

/// Borrowing view of the envelope: decoding allocates only for attributes.
#[derive(Deserialize)]
pub(super) struct Raw<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub msisdn: Cow<'a, str>,
    #[serde(borrow)]
    pub ts: Cow<'a, str>,
    /// Absent or `null` is no attributes.
    #[serde(default)]
    pub attrs: Attrs,
}
