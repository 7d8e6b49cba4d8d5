//! The reader of a replay: reads the input a block of lines at a time and tells which slice
//! each line goes to, without decoding it when the msisdn can be peeked (`event::peek`).
//! The slices decode their own lines, so the one thread that reads does little per event.

use std::io::BufRead;
use std::ops::Range;

use crate::event::{decode_str, peek, Event};

/// Lines read and handed to the slices at a time.
const CHUNK: usize = 32_768;

/// A line of the input: its number (from 0) and where it lies in [`Block::bytes`].
pub type Line = (u64, Range<usize>);

/// A block of the input: its bytes and, for each slice, the lines that go to it, in input
/// order. Blocks are reused, so reading allocates nothing once the first few are grown.
#[derive(Default)]
pub struct Block {
    pub bytes: Vec<u8>,
    pub lines: Vec<Vec<Line>>,
}

/// Rejected lines: how many, and the first few with their line numbers.
#[derive(Default)]
pub struct Rejections {
    pub count: u64,
    pub first: Vec<(u64, String)>,
}

impl Rejections {
    const KEPT: usize = 10;

    fn add(&mut self, n: u64, e: impl std::fmt::Display) {
        self.count += 1;
        if self.first.len() < Self::KEPT {
            self.first.push((n, format!("line {}: {e}", n + 1)));
        }
    }

    /// Adds another's count and keeps the first few of both, by line number (the slices
    /// reject in input order each, so this is the first few of the whole input).
    pub fn merge(&mut self, o: Rejections) {
        self.count += o.count;
        self.first.extend(o.first);
        self.first.sort_by_key(|(n, _)| *n);
        self.first.truncate(Self::KEPT);
    }
}

pub struct Reader<R> {
    input: R,
    next_line: u64,
    pub bytes: u64,
    pub done: bool,
    /// Lines that are not blank.
    pub events: u64,
    /// The lines the reader decoded itself and rejected (the slices count their own).
    pub rejections: Rejections,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R) -> Reader<R> {
        Reader {
            input,
            next_line: 0,
            bytes: 0,
            done: false,
            events: 0,
            rejections: Rejections::default(),
        }
    }

    /// Fills `block` with the next lines, split over `slices`.
    pub fn fill(
        &mut self,
        block: &mut Block,
        slices: usize,
        progress: &mut impl FnMut(u64),
    ) -> std::io::Result<()> {
        block.bytes.clear();
        block.lines.resize_with(slices, Vec::new);
        for l in &mut block.lines {
            l.clear();
        }
        let mut read = 0;
        let mut start = 0;
        while read < CHUNK {
            let avail = self.input.fill_buf()?;
            if avail.is_empty() {
                self.done = true;
                if start < block.bytes.len() {
                    self.line(block, start..block.bytes.len(), slices)?;
                }
                break;
            }
            let (take, ends) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            block.bytes.extend_from_slice(&avail[..take]);
            self.input.consume(take);
            self.bytes += take as u64;
            if ends {
                // As `BufRead::lines`: without the `\n`, and a `\r` before it.
                let mut end = block.bytes.len() - 1;
                if end > start && block.bytes[end - 1] == b'\r' {
                    end -= 1;
                }
                self.line(block, start..end, slices)?;
                start = block.bytes.len();
                read += 1;
            }
        }
        progress(self.bytes);
        Ok(())
    }

    fn line(&mut self, block: &mut Block, at: Range<usize>, slices: usize) -> std::io::Result<()> {
        let n = self.next_line;
        self.next_line += 1;
        let bytes = &block.bytes[at.clone()];
        let slice = match peek::msisdn(bytes) {
            Some(m) => m.shard(slices),
            // Not sure from the bytes: decoded here for its msisdn (and again by its
            // slice, which wants the event; such lines are rare).
            None => {
                let text = utf8(bytes)?;
                if text.trim().is_empty() {
                    return Ok(());
                }
                match decode_str(text) {
                    Ok(e) => e.msisdn.shard(slices),
                    Err(e) => {
                        self.events += 1;
                        self.rejections.add(n, e);
                        return Ok(());
                    }
                }
            }
        };
        self.events += 1;
        block.lines[slice].push((n, at));
        Ok(())
    }
}

/// Decodes a slice's lines of `bytes` into `out`, counting rejections.
pub fn decode_lines(
    bytes: &[u8],
    lines: &[Line],
    out: &mut Vec<(u64, std::sync::Arc<Event>)>,
    rejections: &mut Rejections,
) -> std::io::Result<()> {
    for (n, at) in lines {
        match decode_str(utf8(&bytes[at.clone()])?) {
            Ok(e) => out.push((*n, std::sync::Arc::new(e))),
            Err(e) => rejections.add(*n, e),
        }
    }
    Ok(())
}

/// A line as text; an input that is not UTF-8 stops the replay, as `BufRead::lines` does.
fn utf8(b: &[u8]) -> std::io::Result<&str> {
    std::str::from_utf8(b).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}
