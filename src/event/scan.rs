//! The fast path of [`super::decode_str`]: reads the shape events have in practice (an
//! object of plain strings, integers and booleans, with an `attrs` object of the same)
//! straight into the envelope, borrowing every string.
//!
//! Why not serde_json alone: measured with callgrind on the simulated stream, its visitor
//! machinery took ~5,500 instructions per event, more than everything after decode.
//!
//! It works in two passes, as simdjson does. The first marks every `"` of the line in a
//! bitmap, 64 bytes at a time, and turns the line away if it holds a `\` or a control
//! character anywhere. Without escapes every quote opens or closes a string, so the second
//! pass finds each string's end by taking the next bit instead of reading its bytes.
//!
//! It is deliberately partial. Anything else (an escape, a newline or tab, a nested
//! attribute, a float, a number out of range, a line over [`MAX_LEN`], malformed JSON)
//! returns `None`, and the caller decodes the event with serde_json as before, which also
//! words any error. So the two paths accept and reject the same events with the same
//! result; `tests.rs` checks that against serde_json on simulated traffic and on mutated
//! lines.

use std::borrow::Cow;

use smol_str::SmolStr;

use super::attrs::intern_key;
use super::raw::Raw;
use super::{AttrValue, Attrs};

const BLOCK: usize = 64;
const MAX_BLOCKS: usize = 16;
/// Longer lines take the full parser (events are ~200 bytes).
const MAX_LEN: usize = BLOCK * MAX_BLOCKS;

/// The envelope of `text`, or `None` when the line needs the full parser.
pub(super) fn raw(text: &str) -> Option<Raw<'_>> {
    let mut sc = Scanner::new(text)?;
    let (mut id, mut kind, mut msisdn, mut ts) = (None, None, None, None);
    let mut attrs = Attrs::default();
    sc.expect(b'{')?;
    if !sc.close(b'}') {
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
    sc.skip_spaces();
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
    /// One bit per `"` of the line, by position.
    quotes: [u64; MAX_BLOCKS],
    /// The block holding the next quote not yet read, and its quotes not yet read.
    block: usize,
    pending: u64,
}

impl<'a> Scanner<'a> {
    /// The first pass: `None` if the line is too long or holds a `\` or control character.
    fn new(text: &'a str) -> Option<Scanner<'a>> {
        let b = text.as_bytes();
        if b.len() > MAX_LEN {
            return None;
        }
        let mut quotes = [0u64; MAX_BLOCKS];
        let mut stops = 0;
        let mut chunks = b.chunks_exact(BLOCK);
        for (slot, chunk) in quotes.iter_mut().zip(&mut chunks) {
            let (q, s) = marks(chunk.try_into().expect("a block"));
            *slot = q;
            stops |= s;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Spaces are neither quotes nor stops.
            let mut last = [b' '; BLOCK];
            last[..rest.len()].copy_from_slice(rest);
            let (q, s) = marks(&last);
            quotes[b.len() / BLOCK] = q;
            stops |= s;
        }
        (stops == 0).then_some(Scanner {
            text,
            pos: 0,
            pending: quotes[0],
            quotes,
            block: 0,
        })
    }

    /// Position of the next quote in the line.
    #[inline]
    fn next_quote(&mut self) -> Option<usize> {
        while self.pending == 0 {
            self.block += 1;
            self.pending = *self.quotes.get(self.block)?;
        }
        let at = self.block * BLOCK + self.pending.trailing_zeros() as usize;
        self.pending &= self.pending - 1;
        Some(at)
    }

    /// Spaces between tokens (other whitespace is a control character, turned away above).
    #[inline]
    fn skip_spaces(&mut self) {
        while self.text.as_bytes().get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        // Compact JSON has no spaces: one read and one compare on the usual path.
        match *self.text.as_bytes().get(self.pos)? {
            b' ' => {
                self.skip_spaces();
                self.text.as_bytes().get(self.pos).copied()
            }
            c => Some(c),
        }
    }

    #[inline]
    fn expect(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    /// Reads `end` if it comes next (an empty object).
    fn close(&mut self, end: u8) -> bool {
        let found = self.peek() == Some(end);
        self.pos += usize::from(found);
        found
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

    /// A string, borrowed from the line: it ends at the next quote, as there are no
    /// escapes. Quotes are ASCII, so the slice between them is whole UTF-8.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        // Every quote before `pos` has been read, so the next one must open this string,
        // with nothing but spaces before it.
        let open = self.next_quote()?;
        let gap = self.text.as_bytes().get(self.pos..open)?;
        if gap.iter().any(|&c| c != b' ') {
            return None;
        }
        let end = self.next_quote()?;
        // SAFETY: `open < end <= text.len()` (quote positions are in the line, in order),
        // and both are positions of `"`, an ASCII byte, so both ends of the slice are
        // character boundaries.
        let s = unsafe { self.text.get_unchecked(open + 1..end) };
        self.pos = end + 1;
        Some(s)
    }

    fn attrs(&mut self) -> Option<Attrs> {
        if self.peek()? == b'n' {
            return self.literal("null").map(|_| Attrs::default());
        }
        self.expect(b'{')?;
        // As the serde path does: room for the contract's largest types (a call has eight).
        let mut out = Vec::with_capacity(8);
        if self.close(b'}') {
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

/// One block's quotes as a bitmap, and the bits of any `\` or control character: sixteen
/// bytes per step with SSE2, which every x86-64 CPU has.
#[cfg(target_arch = "x86_64")]
#[inline]
fn marks(block: &[u8; BLOCK]) -> (u64, u64) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let (mut quotes, mut stops) = (0u64, 0u64);
    // SAFETY: SSE2 is part of every x86-64 CPU, so these instructions always exist; each
    // load reads the 16 bytes of `lane`, and an unaligned load needs nothing more.
    unsafe {
        let (quote, backslash, below_space) = (
            _mm_set1_epi8(b'"' as i8),
            _mm_set1_epi8(b'\\' as i8),
            _mm_set1_epi8(0x1f),
        );
        for (i, lane) in block.chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(lane.as_ptr().cast());
            let q = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quote));
            // A byte is below 0x20 exactly when max(byte, 0x1f) is 0x1f (unsigned).
            let control = _mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space);
            let s = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, backslash), control));
            quotes |= u64::from(q as u16) << (16 * i);
            stops |= u64::from(s as u16) << (16 * i);
        }
    }
    (quotes, stops)
}

#[cfg(not(target_arch = "x86_64"))]
use portable_marks as marks;

/// [`marks`] a byte at a time, for other CPUs (and as what the SSE2 version is held to).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn portable_marks(block: &[u8; BLOCK]) -> (u64, u64) {
    let mut quotes = 0u64;
    let mut stops = 0u64;
    for (i, &c) in block.iter().enumerate() {
        quotes |= u64::from(c == b'"') << i;
        stops |= u64::from(c == b'\\' || c < 0x20) << i;
    }
    (quotes, stops)
}

#[cfg(test)]
mod tests {
    use super::{marks, portable_marks, raw, BLOCK, MAX_LEN};

    #[test]
    fn marks_every_quote_and_stop_at_every_position() {
        for i in 0..BLOCK {
            for (c, quote) in [(b'"', true), (b'\\', false), (0x00, false), (0x1f, false)] {
                let mut b = [b'a'; BLOCK];
                b[i] = c;
                let (q, s) = marks(&b);
                assert_eq!(q, u64::from(quote) << i, "{c} at {i}");
                assert_eq!(s, u64::from(!quote) << i, "{c} at {i}");
            }
        }
        // Bytes just above the stops, and UTF-8, are ordinary.
        let b: Vec<u8> = " !#[]~\x7f中文".bytes().cycle().take(BLOCK).collect();
        assert_eq!(marks(&b.try_into().unwrap()), (0, 0));
    }

    #[test]
    fn the_vector_marks_match_the_portable_ones() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let bytes = b"\"\\\x00\x1f\x20\x7f\x80\xff\x9ca{:";
        for _ in 0..2000 {
            let mut b = [0u8; BLOCK];
            for c in &mut b {
                *c = if rng.random_bool(0.5) {
                    bytes[rng.random_range(0..bytes.len())]
                } else {
                    rng.random()
                };
            }
            assert_eq!(marks(&b), portable_marks(&b), "{b:?}");
        }
    }

    #[test]
    fn strings_are_found_across_block_edges() {
        // Pad the id so each string in turn straddles a 64-byte edge.
        for pad in 0..(2 * BLOCK) {
            let id = "x".repeat(pad + 1);
            let line = format!(
                r#"{{"id":"{id}","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z","attrs":{{"peer":"中文 peer","segments":2}}}}"#
            );
            let r = raw(&line).unwrap_or_else(|| panic!("scan path for {line}"));
            assert_eq!(r.id, id);
            assert_eq!(r.msisdn, "8613900000001");
            assert_eq!(r.attrs.0.len(), 2);
            assert_eq!(
                r.attrs.get("peer").and_then(|v| v.as_str()),
                Some("中文 peer")
            );
        }
    }

    #[test]
    fn long_lines_and_lines_with_escapes_or_newlines_are_passed_on() {
        let ok = r#"{"id":"e1","type":"sms","msisdn":"8613900000001","ts":"2026-11-23T08:15:00Z"}"#;
        assert!(raw(ok).is_some());
        assert!(raw(&ok.replace("e1", "e\\u0031")).is_none());
        assert!(raw(&ok.replace(",", ",\n")).is_none());
        let long = ok.replace("e1", &"e".repeat(MAX_LEN));
        assert!(raw(&long).is_none());
        let edge = ok.replace("e1", &"e".repeat(MAX_LEN - ok.len() + 2));
        assert_eq!(edge.len(), MAX_LEN);
        assert!(raw(&edge).is_some());
    }
}
