//! The subscriber of an event line without decoding it: what a reader that only splits
//! lines between cores needs, so the decode itself runs on the core that owns the
//! subscriber.
//!
//! The promise is narrow: when [`msisdn`] answers `Some(m)` and the line decodes, the
//! event's msisdn is `m`. It answers only when the line holds no `\` (so every `"` opens or
//! closes a string, and the token `"msisdn"` can only be a whole string) and exactly one
//! such token, followed by `:` and a string of digits. A line that decodes has a top-level
//! `msisdn` key, so that one token is it. Anything else (an escape, a second `"msisdn"`
//! anywhere, a value that is not a line number) is `None`, and the caller decodes in full.

use memchr::memmem;

use super::Msisdn;

const KEY: &[u8] = b"\"msisdn\"";

/// Built once: `memmem::find` builds its searcher on every call, which cost as much as the
/// search itself on lines this short (a tenth of the reader's time).
static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(KEY));

/// The msisdn of `line` when it can be read without a full decode.
pub fn msisdn(line: &[u8]) -> Option<Msisdn> {
    if memchr::memchr(b'\\', line).is_some() {
        return None;
    }
    let at = FINDER.find(line)?;
    let rest = &line[at + KEY.len()..];
    if FINDER.find(rest).is_some() {
        return None;
    }
    let rest = skip_spaces(rest).strip_prefix(b":")?;
    let rest = skip_spaces(rest).strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    let digits = std::str::from_utf8(&rest[..end]).ok()?;
    Msisdn::parse(digits).ok()
}

/// JSON's whitespace, as serde_json skips it between tokens.
fn skip_spaces(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    &b[n..]
}
