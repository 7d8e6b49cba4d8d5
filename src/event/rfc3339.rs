//! Event time: RFC 3339 with an offset, read as chrono reads it.
//!
//! chrono's general parser cost ~500 instructions per event, more than the rest of
//! validation together. Timestamps as senders write them (`2026-11-23T08:15:00.250+08:00`,
//! `...Z`) are read here with fixed offsets; anything else (lowercase `t` or `z`, a space
//! for `T`, a leap second, out-of-range fields, malformed text) goes to chrono, which also
//! words the error. `tests` holds the two to the same results.

use chrono::{DateTime, FixedOffset, NaiveDate, ParseResult};

pub(super) fn parse(s: &str) -> ParseResult<DateTime<FixedOffset>> {
    match fast(s.as_bytes()) {
        Some(t) => Ok(t),
        None => DateTime::parse_from_rfc3339(s),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|±HH:MM)`, or `None` for chrono to decide.
///
/// Fixed positions after one length check, so the digit reads carry no bounds checks.
fn fast(b: &[u8]) -> Option<DateTime<FixedOffset>> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = two(b[0], b[1])? * 100 + two(b[2], b[3])?;
    let (month, day) = (two(b[5], b[6])?, two(b[8], b[9])?);
    let (hour, min, sec) = (two(b[11], b[12])?, two(b[14], b[15])?, two(b[17], b[18])?);
    if sec > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if b[at] == b'.' {
        at += 1;
        let mut scale = 1_000_000_000;
        while let Some(d) = b.get(at).and_then(|c| digit(*c)) {
            if scale == 1 {
                return None;
            }
            scale /= 10;
            nanos += d * scale;
            at += 1;
        }
        if scale == 1_000_000_000 {
            return None;
        }
    }
    let offset_secs = match &b[at..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let local = NaiveDate::from_ymd_opt(year as i32, month, day)?
        .and_hms_nano_opt(hour, min, sec, nanos)?;
    let offset = FixedOffset::east_opt(offset_secs)?;
    // Always in range: the offset is under a day and the year within 0..=9999.
    let utc = local.checked_sub_offset(offset)?;
    Some(DateTime::from_naive_utc_and_offset(utc, offset))
}

#[inline]
fn digit(c: u8) -> Option<u32> {
    let d = c.wrapping_sub(b'0');
    (d < 10).then_some(u32::from(d))
}

/// Two decimal digits as a number.
#[inline]
fn two(a: u8, b: u8) -> Option<u32> {
    Some(digit(a)? * 10 + digit(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_chrono(s: &str) {
        let chrono = DateTime::parse_from_rfc3339(s);
        match (parse(s), &chrono) {
            (Ok(a), Ok(b)) => {
                assert_eq!(&a, b, "{s}");
                assert_eq!(a.offset(), b.offset(), "{s}");
            }
            (Err(_), Err(_)) => {}
            (mine, _) => panic!("{s}: mine {mine:?}, chrono {chrono:?}"),
        }
    }

    #[test]
    fn reads_what_senders_write() {
        let t = parse("2026-11-23T08:15:00.250+08:00").unwrap();
        assert_eq!(t.timestamp(), 1_795_392_900);
        assert_eq!(t.timestamp_subsec_millis(), 250);
        assert_eq!(t.offset().local_minus_utc(), 8 * 3600);
        assert!(fast(b"2026-11-23T08:15:00.250+08:00").is_some());
        assert!(fast(b"2026-11-23T08:15:00Z").is_some());
    }

    #[test]
    fn agrees_with_chrono_on_edge_cases() {
        for s in [
            "2026-11-23T08:15:00Z",
            "2026-11-23T08:15:00.000500+08:00",
            "2026-11-23T08:15:00.123456789-05:30",
            "2026-11-23T08:15:00.1234567891Z",
            "2026-11-23T08:15:00.Z",
            "2026-11-23T08:15:00-00:00",
            "2026-11-23T08:15:00+23:59",
            "2026-11-23T08:15:00+24:00",
            "2026-11-23T08:15:00+08:60",
            "2026-11-23T08:15:00+0800",
            "2026-11-23T08:15:00+08",
            "2026-11-23t08:15:00z",
            "2026-11-23 08:15:00Z",
            "2026-11-23T08:15:60Z",
            "2026-11-23T24:00:00Z",
            "2026-02-29T00:00:00Z",
            "2028-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999-23:59",
            "2026-11-23T08:15:00",
            "2026-11-23T08:15:00Zjunk",
            "2026-11-23T08:15:0+0Z",
            "+026-11-23T08:15:00Z",
            "2026-11-23T08:15:00+08:00 ",
            "",
            "中文中文中文中文中文中文中文",
        ] {
            same_as_chrono(s);
        }
    }

    #[test]
    fn agrees_with_chrono_on_mutations() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        const ALPHABET: &[u8] = b"0123456789-+:.TZtz 9";
        for base in [
            "2026-11-23T08:15:00.000500+08:00",
            "2026-11-23T08:15:00Z",
            "2024-02-29T23:59:59.5-11:30",
        ] {
            for _ in 0..5000 {
                let b = crate::event::tests::mutate(&mut rng, base.as_bytes(), ALPHABET, 1..3);
                same_as_chrono(std::str::from_utf8(&b).unwrap());
            }
        }
    }
}
