//! A subscriber line number: E.164 without `+`, 5 to 15 digits.

use std::fmt;

/// Kept as a number plus its digit count so it is `Copy`, hashes fast and keeps leading zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn {
    value: u64,
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsisdnError {
    #[error("must be 5 to 15 digits, got {0} characters")]
    Length(usize),
    #[error("must contain only digits 0-9 (E.164 without '+')")]
    NotDigits,
}

impl Msisdn {
    pub fn parse(s: &str) -> Result<Msisdn, MsisdnError> {
        let b = s.as_bytes();
        if !(5..=15).contains(&b.len()) {
            return Err(MsisdnError::Length(s.chars().count()));
        }
        let mut value = 0u64;
        for &c in b {
            if !c.is_ascii_digit() {
                return Err(MsisdnError::NotDigits);
            }
            value = value * 10 + u64::from(c - b'0');
        }
        Ok(Msisdn {
            value,
            len: b.len() as u8,
        })
    }

    /// The digits as text, leading zeros kept, without the formatter (decisions build ids
    /// from it on the hot path).
    pub fn digits(self) -> MsisdnDigits {
        let mut buf = [b'0'; 15];
        let len = usize::from(self.len);
        let mut v = self.value;
        for slot in buf[..len].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        MsisdnDigits { buf, len: self.len }
    }

    /// A stable shard for this line, the same on every instance.
    pub fn shard(self, shards: usize) -> usize {
        // Fibonacci hashing spreads sequential numbers evenly.
        let h = self.value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> 32) as usize) % shards.max(1)
    }
}

/// A line number's digits, on the stack.
pub struct MsisdnDigits {
    buf: [u8; 15],
    len: u8,
}

impl MsisdnDigits {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).expect("ASCII digits")
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.digits().as_str())
    }
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({self})")
    }
}

impl std::str::FromStr for Msisdn {
    type Err = MsisdnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Msisdn::parse(s)
    }
}

impl serde::Serialize for Msisdn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Msisdn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Msisdn::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let m = Msisdn::parse("8613900000001").unwrap();
        assert_eq!(m.to_string(), "8613900000001");
    }

    #[test]
    fn digits_match_the_formatter_at_every_length() {
        for len in 5..=15 {
            for s in [
                "0".repeat(len),
                "9".repeat(len),
                format!("{:0len$}", 42),
                "123456789012345"[..len].to_string(),
            ] {
                let m = Msisdn::parse(&s).unwrap();
                assert_eq!(m.digits().as_str(), s);
                assert_eq!(m.to_string(), s);
            }
        }
    }

    #[test]
    fn keeps_leading_zeros() {
        assert_eq!(Msisdn::parse("00123").unwrap().to_string(), "00123");
        assert_ne!(
            Msisdn::parse("00123").unwrap(),
            Msisdn::parse("0123").unwrap_or(Msisdn::parse("12345").unwrap())
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Msisdn::parse("1234"), Err(MsisdnError::Length(4)));
        assert_eq!(
            Msisdn::parse("1234567890123456"),
            Err(MsisdnError::Length(16))
        );
        assert_eq!(Msisdn::parse("+8613900000001"), Err(MsisdnError::NotDigits));
        assert_eq!(Msisdn::parse("86139abc"), Err(MsisdnError::NotDigits));
        assert_eq!(Msisdn::parse(""), Err(MsisdnError::Length(0)));
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        let m = Msisdn::parse("8613900000001").unwrap();
        assert_eq!(m.shard(4), m.shard(4));
        assert!(m.shard(4) < 4);
    }
}
