//! Hand-written checks of the string formats cheap enough to check on every message.

use std::net::{Ipv4Addr, Ipv6Addr};

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// RFC 3339 `full-date`: `YYYY-MM-DD`, a day that exists.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    match (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// RFC 3339 `full-time`: `HH:MM:SS[.frac](Z|±HH:MM)` (second 60 allowed for leap seconds).
pub fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(h), Some(m), Some(sec)) = (digits(&b[0..2]), digits(&b[3..5]), digits(&b[6..8]))
    else {
        return false;
    };
    if h > 23 || m > 59 || sec > 60 {
        return false;
    }
    let mut rest = &b[8..];
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &tail[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', oh1, oh2, b':', om1, om2] => {
            matches!((digits(&[*oh1, *oh2]), digits(&[*om1, *om2])), (Some(oh), Some(om)) if oh <= 23 && om <= 59)
        }
        _ => false,
    }
}

/// RFC 3339 `date-time`: `full-date "T" full-time` (`t` and a space accepted for the `T`).
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 11
        && matches!(b[10], b'T' | b't' | b' ')
        && s.is_char_boundary(10)
        && is_date(&s[..10])
        && is_time(&s[11..])
}

/// An email address `local@domain`: a dot-atom local part (at most 64 bytes) and a domain of
/// at least two labels of letters, digits and inner hyphens (at most 255 bytes). Quoted local
/// parts and address literals are refused, as most validators (pydantic's included) do.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    const ATEXT: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || ATEXT.contains(&c) || c >= 0x80)
        });
    local_ok && is_domain(domain)
}

fn is_domain(domain: &str) -> bool {
    let labels = domain.split('.');
    domain.len() <= 255
        && domain.contains('.')
        && labels.clone().all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c >= 0x80)
        })
}

/// A UUID in its hyphenated form (`8-4-4-4-12` hex digits, any case).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An absolute URI (RFC 3986): a scheme, `:`, then only URI characters, with `%` followed by
/// two hex digits.
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb[0].is_ascii_alphabetic()
        || !sb
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return false;
    }
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
            continue;
        }
        let allowed = c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c);
        if !allowed {
            return false;
        }
        i += 1;
    }
    true
}

/// A dotted-quad IPv4 address (no leading zeros).
pub fn is_ipv4(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
}

/// An IPv6 address (RFC 4291 text forms, without a zone).
pub fn is_ipv6(s: &str) -> bool {
    s.parse::<Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert!(is_date_time("2024-02-29T12:30:00Z"));
        assert!(is_date_time("2024-02-29T12:30:00.123+02:00"));
        assert!(!is_date_time("2023-02-29T12:30:00Z"));
        assert!(!is_date_time("2024-02-29T24:00:00Z"));
        assert!(!is_date_time("2024-02-29T12:30:00"));
        assert!(!is_date_time("2024-02-29"));
        assert!(!is_date_time("2024-02-29Té2:30:00Z"));
        assert!(is_date("2024-12-31"));
        assert!(!is_date("2024-13-01"));
        assert!(!is_date("2024-1-01"));
        assert!(is_time("23:59:60Z"));
        assert!(!is_time("23:59:60."));
    }

    #[test]
    fn emails_uuids_uris_ips() {
        assert!(is_email("ada.lovelace+x@example.org"));
        assert!(!is_email("ada@localhost"));
        assert!(!is_email("@example.org"));
        assert!(!is_email("a..b@example.org"));
        assert!(!is_email("a b@example.org"));
        assert!(!is_email("ada@-example.org"));
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
        assert!(is_uri("https://example.org/a?b=c#d"));
        assert!(is_uri("urn:isbn:0451450523"));
        assert!(is_uri("mailto:a@b.c"));
        assert!(!is_uri("/relative/path"));
        assert!(!is_uri("https://exa mple.org"));
        assert!(!is_uri("https://example.org/%zz"));
        assert!(!is_uri("https://example.org/%4"));
        assert!(is_ipv4("192.168.0.1"));
        assert!(!is_ipv4("192.168.0.256"));
        assert!(!is_ipv4("192.168.00.1"));
        assert!(is_ipv6("::1"));
        assert!(is_ipv6("2001:db8::8a2e:370:7334"));
        assert!(!is_ipv6("2001:db8::g"));
    }
}
