//! The fast path of [`super::decode_str`]: one forward pass over the line that reads the
//! shape events have in practice (an object of plain strings, integers and booleans, with an
//! `attrs` object of the same) straight into the envelope, borrowing every string.
//!
//! Why not serde_json alone: measured with callgrind on the simulated stream, its visitor
//! machinery took ~5,500 instructions per event, more than everything after decode. This
//! pass does the common case in a fraction of that.
//!
//! It is deliberately partial. Anything else (an escape in a string, a nested attribute, a
//! float, a number out of range, malformed JSON) returns `None`, and the caller decodes the
//! event with serde_json as before, which also words any error. So the two paths accept and
//! reject the same events with the same result; `tests.rs` checks that against serde_json on
//! simulated traffic and on mutated lines.

use std::borrow::Cow;

use smol_str::SmolStr;

use super::attrs::intern_key;
use super::decode::Raw;
use super::{AttrValue, Attrs};

/// The envelope of `text`, or `None` when the line needs the full parser.
pub(super) fn raw(text: &str) -> Option<Raw<'_>> {
    let mut sc = Scanner { text, pos: 0 };
    let (mut id, mut kind, mut msisdn, mut ts) = (None, None, None, None);
    let mut attrs = Attrs::default();
    sc.expect(b'{')?;
    if sc.peek()? == b'}' {
        sc.pos += 1;
    } else {
        loop {
            let key = sc.string()?;
            sc.expect(b':')?;
            match key {
                "id" => id = Some(sc.string()?),
                "type" => kind = Some(sc.string()?),
                "msisdn" => msisdn = Some(sc.string()?),
                "ts" => ts = Some(sc.string()?),
                "attrs" => attrs = sc.attrs()?,
                // Fields outside the envelope are ignored, as serde does.
                _ => {
                    sc.scalar()?;
                }
            }
            if !sc.next_member()? {
                break;
            }
        }
    }
    sc.skip_ws();
    if sc.pos != text.len() {
        return None;
    }
    Some(Raw {
        id: Cow::Borrowed(id?),
        kind: Cow::Borrowed(kind?),
        msisdn: Cow::Borrowed(msisdn?),
        ts: Cow::Borrowed(ts?),
        attrs,
    })
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        let b = self.text.as_bytes();
        while matches!(b.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.as_bytes().get(self.pos).copied()
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    /// After a member: `true` if another follows, `false` at the closing brace.
    fn next_member(&mut self) -> Option<bool> {
        let more = match self.peek()? {
            b',' => true,
            b'}' => false,
            _ => return None,
        };
        self.pos += 1;
        Some(more)
    }

    /// A string without escapes or control characters, borrowed from the line. Quotes are
    /// ASCII, so the slice between them is whole UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let len = string_len(&self.text.as_bytes()[start..])?;
        if self.text.as_bytes()[start + len] != b'"' {
            return None;
        }
        self.pos = start + len + 1;
        Some(&self.text[start..start + len])
    }

    fn attrs(&mut self) -> Option<Attrs> {
        if self.peek()? == b'n' {
            return self.literal("null").map(|_| Attrs::default());
        }
        self.expect(b'{')?;
        // As the serde path does: room for the contract's largest types (a call has eight).
        let mut out = Vec::with_capacity(8);
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(Attrs(out));
        }
        loop {
            let key = intern_key(self.string()?);
            self.expect(b':')?;
            out.push((key, self.scalar()?));
            if !self.next_member()? {
                return Some(Attrs(out));
            }
        }
    }

    fn scalar(&mut self) -> Option<AttrValue> {
        match self.peek()? {
            b'"' => self.string().map(|s| AttrValue::Str(SmolStr::new(s))),
            b't' => self.literal("true").map(|_| AttrValue::Bool(true)),
            b'f' => self.literal("false").map(|_| AttrValue::Bool(false)),
            b'n' => self.literal("null").map(|_| AttrValue::Null),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.pos..]
            .starts_with(word)
            .then(|| self.pos += word.len())
    }

    /// An integer as serde_json reads it: `Int` within i64, a float for larger positive
    /// values up to u64. Fractions, exponents and anything larger take the full parser.
    fn integer(&mut self) -> Option<AttrValue> {
        let b = self.text.as_bytes();
        let negative = b[self.pos] == b'-';
        let mut at = self.pos + usize::from(negative);
        let digits_from = at;
        let mut value: u64 = 0;
        while let Some(d) = b.get(at).filter(|c| c.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            at += 1;
        }
        let digits = at - digits_from;
        // JSON allows no leading zeros, and a number must have a digit.
        if digits == 0 || (digits > 1 && b[digits_from] == b'0') {
            return None;
        }
        if matches!(b.get(at), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos = at;
        if negative {
            // serde_json reads `-0` as the float -0.0, and past -2^63 gives floats too.
            if value == 0 {
                return None;
            }
            return 0i64.checked_sub_unsigned(value).map(AttrValue::Int);
        }
        Some(i64::try_from(value).map_or(AttrValue::Float(value as f64), AttrValue::Int))
    }
}

/// Bytes before the first `"`, `\\` or control character, eight at a time: a per-byte loop
/// was half of the whole decode. Each test below sets a byte's high bit where it matches;
/// borrows can flag bytes after a true match, never before, so the first flag is exact.
fn string_len(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        let hits = zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

#[cfg(test)]
mod tests {
    use super::string_len;

    #[test]
    fn string_len_finds_the_first_stop_byte_at_every_position() {
        for len in 0..40 {
            for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                let mut s = vec![b'a'; len];
                s.push(stop);
                s.extend_from_slice(b"xx\"yy");
                assert_eq!(string_len(&s), Some(len), "len {len} stop {stop}");
            }
            // Bytes just above the stops, and UTF-8, are ordinary.
            let mut s: Vec<u8> = " !#[]~\x7f中文".bytes().cycle().take(len).collect();
            assert_eq!(string_len(&s), None);
            s.push(b'"');
            assert_eq!(string_len(&s), Some(len));
        }
    }
}
