//! Event time: RFC 3339 with an offset, read as chrono reads it.
//!
//! chrono's general parser cost ~500 instructions per event, more than the rest of
//! validation together. Timestamps as senders write them (`2026-11-23T08:15:00.250+08:00`,
//! `...Z`) are read here with fixed offsets; anything else (lowercase `t` or `z`, a space
//! for `T`, a leap second, out-of-range fields, malformed text) goes to chrono, which also
//! words the error. `tests` holds the two to the same results.

use chrono::{DateTime, FixedOffset, NaiveDate, ParseResult, TimeZone};

pub(super) fn parse(s: &str) -> ParseResult<DateTime<FixedOffset>> {
    match fast(s.as_bytes()) {
        Some(t) => Ok(t),
        None => DateTime::parse_from_rfc3339(s),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|±HH:MM)`, or `None` for chrono to decide.
fn fast(b: &[u8]) -> Option<DateTime<FixedOffset>> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = num(&b[0..4])?;
    let (month, day) = (num(&b[5..7])?, num(&b[8..10])?);
    let (hour, min, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if sec > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if b[at] == b'.' {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(&b[at + 1..at + 1 + digits])? * 10u32.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let offset_secs = match &b[at..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
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
    FixedOffset::east_opt(offset_secs)?
        .from_local_datetime(&local)
        .single()
}

/// Decimal digits only, as a number.
fn num(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
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
