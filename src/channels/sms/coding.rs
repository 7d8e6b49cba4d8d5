//! SMS text on the wire: the GSM 03.38 default alphabet (7-bit, one septet per octet as SMPP
//! carries it for `data_coding` 0) or UCS-2 (UTF-16 big-endian, `data_coding` 8), and long
//! texts split into concatenated parts, each behind a user data header (8-bit reference).

/// The GSM 03.38 default alphabet by septet. 0x1B is the escape to the extension table and
/// stands for no character of its own.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

const ESCAPE: u8 = 0x1B;

/// The extension table: characters sent as the escape septet followed by this septet.
const EXTENSION: [(char, u8); 10] = [
    ('\u{0c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// `data_coding` values (SMPP v3.4, 5.2.19).
pub const DCS_DEFAULT: u8 = 0x00;
pub const DCS_UCS2: u8 = 0x08;
/// `esm_class` bit: the short message starts with a user data header.
pub const ESM_UDHI: u8 = 0x40;

/// Septets a single message holds, and a concatenated part after its 6-octet header.
const GSM_SINGLE: usize = 160;
const GSM_PART: usize = 153;
/// UTF-16 code units likewise (140 octets, 134 after the header).
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// The septets of one character: one, two (escape + extension), or none outside the alphabet.
fn septets(c: char) -> Option<([u8; 2], usize)> {
    if c != '\u{1b}' {
        if let Some(i) = BASIC.iter().position(|&b| b == c) {
            return Some(([i as u8, 0], 1));
        }
    }
    EXTENSION
        .iter()
        .find(|(e, _)| *e == c)
        .map(|&(_, code)| ([ESCAPE, code], 2))
}

/// `text` in the GSM 03.38 default alphabet, one septet per octet; `None` when a character
/// is not in it (then the text goes as UCS-2).
pub fn gsm7(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (s, n) = septets(c)?;
        out.extend_from_slice(&s[..n]);
    }
    Some(out)
}

/// Unpacked GSM 03.38 septets back to text (what an SMSC hands us in a `deliver_sm`).
/// An unknown escape is read as a space, as 03.38 asks.
pub fn gsm7_decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut it = septets.iter();
    while let Some(&s) = it.next() {
        if s == ESCAPE {
            match it.next() {
                Some(&e) => out.push(
                    EXTENSION
                        .iter()
                        .find(|(_, code)| *code == e)
                        .map(|&(c, _)| c)
                        .unwrap_or(' '),
                ),
                None => out.push(' '),
            }
        } else {
            out.push(BASIC[(s & 0x7F) as usize]);
        }
    }
    out
}

/// `text` as UCS-2 big-endian (UTF-16BE: a character outside the BMP takes two units).
pub fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

pub fn ucs2_decode(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// One `submit_sm`'s worth of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub data_coding: u8,
    pub esm_class: u8,
    /// The user data header (when concatenated) followed by the encoded text.
    pub short_message: Vec<u8>,
}

/// The parts `text` is sent in. GSM 7-bit when every character is in the default alphabet
/// (extension characters count two septets), UCS-2 otherwise. Up to 160 septets / 70 UTF-16
/// units go as one message; longer texts in parts of 153 / 67, never splitting an escape
/// pair or a surrogate pair, each with the header `05 00 03 ref total seq`. `Err` past 255
/// parts, which the header cannot number.
pub fn parts(text: &str, reference: u8) -> Result<Vec<Part>, String> {
    let (dcs, chunks): (u8, Vec<Vec<u8>>) = match gsm7(text) {
        Some(s) if s.len() <= GSM_SINGLE => (DCS_DEFAULT, vec![s]),
        Some(s) => (DCS_DEFAULT, split(&s, GSM_PART, |s, i| s[i] == ESCAPE)),
        None => {
            let units: Vec<u16> = text.encode_utf16().collect();
            let chunks = if units.len() <= UCS2_SINGLE {
                vec![units]
            } else {
                // A high surrogate must stay with the low one after it.
                split(&units, UCS2_PART, |u, i| (0xD800..0xDC00).contains(&u[i]))
            };
            let bytes = chunks
                .into_iter()
                .map(|c| c.into_iter().flat_map(u16::to_be_bytes).collect())
                .collect();
            (DCS_UCS2, bytes)
        }
    };
    if chunks.len() == 1 {
        let short_message = chunks.into_iter().next().unwrap_or_default();
        return Ok(vec![Part {
            data_coding: dcs,
            esm_class: 0,
            short_message,
        }]);
    }
    let total = u8::try_from(chunks.len())
        .map_err(|_| format!("message needs {} parts, at most 255 fit", chunks.len()))?;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut sm = udh(reference, total, i as u8 + 1).to_vec();
            sm.extend_from_slice(&chunk);
            Part {
                data_coding: dcs,
                esm_class: ESM_UDHI,
                short_message: sm,
            }
        })
        .collect())
}

/// Splits into chunks of at most `max` items, ending a chunk early where its last item would
/// be the first of a pair (`opens_pair(items, index)`).
fn split<T: Copy>(
    items: &[T],
    max: usize,
    opens_pair: impl Fn(&[T], usize) -> bool,
) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let mut end = (start + max).min(items.len());
        if end < items.len() && end - start > 1 && opens_pair(items, end - 1) {
            end -= 1;
        }
        out.push(items[start..end].to_vec());
        start = end;
    }
    out
}

/// The concatenation header, 8-bit reference (3GPP TS 23.040 9.2.3.24.1): UDHL 5, IEI 0,
/// IEDL 3, reference, parts in all, this part (from 1).
pub fn udh(reference: u8, total: u8, seq: u8) -> [u8; 6] {
    [0x05, 0x00, 0x03, reference, total, seq]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_maps_the_default_alphabet_and_the_extension_table() {
        assert_eq!(
            gsm7("Hi @ 5$").unwrap(),
            vec![0x48, 0x69, 0x20, 0x00, 0x20, 0x35, 0x02]
        );
        assert_eq!(
            gsm7("£¥èΔ_ß¿à").unwrap(),
            vec![0x01, 0x03, 0x04, 0x10, 0x11, 0x1E, 0x60, 0x7F]
        );
        assert_eq!(gsm7("Ä§").unwrap(), vec![0x5B, 0x5F]);
        // Extension characters take the escape and a second septet.
        assert_eq!(gsm7("€5").unwrap(), vec![0x1B, 0x65, 0x35]);
        assert_eq!(
            gsm7("{[~]}|^\\").unwrap(),
            vec![
                0x1B, 0x28, 0x1B, 0x3C, 0x1B, 0x3D, 0x1B, 0x3E, 0x1B, 0x29, 0x1B, 0x40, 0x1B, 0x14,
                0x1B, 0x2F
            ]
        );
        // Not in the alphabet: Chinese, a backtick, a raw escape character, emoji.
        for t in ["欢迎", "`", "\u{1b}", "ok 👍"] {
            assert_eq!(gsm7(t), None, "{t:?}");
        }
        let basic: String = BASIC.iter().filter(|&&c| c != '\u{1b}').collect();
        let all = format!("{basic}€{{}}[]~|^\\\u{0c}");
        assert_eq!(gsm7_decode(&gsm7(&all).unwrap()), all, "round trip");
        assert_eq!(
            gsm7_decode(&[0x41, 0x1B, 0x7F, 0x1B]),
            "A  ",
            "unknown escapes read as spaces"
        );
    }

    #[test]
    fn ucs2_is_utf16_big_endian() {
        assert_eq!(ucs2("欢迎"), vec![0x6B, 0x22, 0x8F, 0xCE]);
        assert_eq!(ucs2("A"), vec![0x00, 0x41]);
        // Outside the BMP: a surrogate pair.
        assert_eq!(ucs2("👍"), vec![0xD8, 0x3D, 0xDC, 0x4D]);
        assert_eq!(ucs2_decode(&ucs2("您的余额 👍")), "您的余额 👍");
    }

    #[test]
    fn short_texts_go_as_one_message_without_a_header() {
        let p = parts(&"a".repeat(160), 7).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].data_coding, p[0].esm_class), (DCS_DEFAULT, 0));
        assert_eq!(p[0].short_message, vec![0x61; 160]);
        let p = parts(&"欢".repeat(70), 7).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].data_coding, p[0].esm_class), (DCS_UCS2, 0));
        assert_eq!(p[0].short_message.len(), 140);
    }

    #[test]
    fn long_texts_are_concatenated_with_a_header_per_part() {
        let text = format!("{}{}z", "x".repeat(153), "y".repeat(153));
        let p = parts(&text, 0xAB).unwrap();
        assert_eq!(p.len(), 3);
        for (i, part) in p.iter().enumerate() {
            assert_eq!(part.esm_class, ESM_UDHI);
            assert_eq!(part.data_coding, DCS_DEFAULT);
            assert_eq!(part.short_message[..6], [5, 0, 3, 0xAB, 3, i as u8 + 1]);
        }
        assert_eq!(p[0].short_message.len(), 6 + 153);
        assert_eq!(p[2].short_message[6..], [b'z']);
        let body: Vec<u8> = p
            .iter()
            .flat_map(|x| x.short_message[6..].to_vec())
            .collect();
        assert_eq!(gsm7_decode(&body), text);

        // UCS-2: 67 units a part.
        let p = parts(&"欢".repeat(135), 1).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].data_coding, DCS_UCS2);
        assert_eq!(p[0].short_message.len(), 6 + 134);
        assert_eq!(p[2].short_message.len(), 6 + 2);
    }

    #[test]
    fn parts_never_split_an_escape_or_a_surrogate_pair() {
        // 152 plain septets then '€': the escape would be the 153rd septet of part one.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let p = parts(&text, 1).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].short_message.len(), 6 + 152);
        assert_eq!(p[1].short_message[6..8], [0x1B, 0x65]);
        // A text of 160 septets with an extension character is over the single limit.
        assert_eq!(parts(&format!("€{}", "a".repeat(159)), 1).unwrap().len(), 2);

        let text = format!("{}👍{}", "欢".repeat(66), "迎".repeat(10));
        let p = parts(&text, 1).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].short_message.len(), 6 + 132);
        assert_eq!(p[1].short_message[6..10], [0xD8, 0x3D, 0xDC, 0x4D]);
        let joined: Vec<u8> = p
            .iter()
            .flat_map(|x| x.short_message[6..].to_vec())
            .collect();
        assert_eq!(ucs2_decode(&joined), text);
    }

    #[test]
    fn more_parts_than_a_header_can_number_are_refused() {
        assert_eq!(parts(&"a".repeat(153 * 255), 1).unwrap().len(), 255);
        assert!(parts(&"a".repeat(153 * 255 + 1), 1).is_err());
    }
}
