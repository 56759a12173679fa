//! Mapping between the core contract and NATS: subjects, headers, subscription closing.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use futures_core::Stream;
use futures_util::StreamExt;
use ruststream::address::Segment;
use ruststream::message::names;
use ruststream::{Address, Error, Headers, OutgoingMessage, Result};
use tokio::sync::watch;

/// The wire spelling of the contract's `content-type` header: lowercase, as FastStream (the most
/// used framework on NATS besides this one) writes and reads it; any spelling is read back.
pub const NATS_CONTENT_TYPE: &str = "content-type";

/// FastStream's correlation id header, written beside `correlation-id` (which RustStream reads
/// first) and read when `correlation-id` is absent.
pub const FASTSTREAM_CORRELATION_ID: &str = "correlation_id";

/// The correlation id of received `headers`: `correlation-id`, else FastStream's `correlation_id`.
#[inline]
pub fn correlation_of(headers: &Headers) -> Option<&str> {
    headers
        .get(names::CORRELATION_ID)
        .or_else(|| headers.get(FASTSTREAM_CORRELATION_ID))
}

/// Header carrying [`OutgoingMessage::reply_to`] where the transport cannot (JetStream stores
/// no reply subject).
pub const REPLY_TO_HEADER: &str = "reply-to";

/// Map an address template to a NATS subject: every `{param}` becomes the single-token
/// wildcard `*`. A parameter must be a whole token (`a.{id}.b`, not `a.x{id}`).
pub fn subject_for(address: &Address) -> Result<String> {
    let segs = address.segments();
    for (i, seg) in segs.iter().enumerate() {
        if let Segment::Param(p) = seg {
            let before = i == 0 || matches!(&segs[i - 1], Segment::Literal(l) if l.ends_with('.'));
            let after = i + 1 == segs.len()
                || matches!(&segs[i + 1], Segment::Literal(l) if l.starts_with('.'));
            if !(before && after) {
                return Err(Error::InvalidAddress {
                    address: address.as_str().to_owned(),
                    reason: format!(
                        "parameter `{p}` must be a whole NATS subject token (between dots)"
                    )
                    .into(),
                });
            }
        }
    }
    let subject = address.to_wildcard(|_| "*".to_owned());
    check_subject(&subject, true)?;
    Ok(subject)
}

/// Validate a subject: non-empty tokens, no whitespace; wildcards only when subscribing.
#[inline]
pub fn check_subject(subject: &str, wildcards: bool) -> Result<()> {
    // This runs on every publish: the usual subject (printable ASCII, no wildcard, no empty
    // token) is recognised eight bytes at a time, inline; anything else takes the exact path,
    // which also works out the reason.
    if plain_subject(subject.as_bytes()) {
        Ok(())
    } else {
        check_subject_exactly(subject, wildcards)
    }
}

/// [`check_subject`] one token at a time, for subjects its fast path does not recognise.
#[inline(never)]
fn check_subject_exactly(subject: &str, wildcards: bool) -> Result<()> {
    let bad = |reason: &'static str| {
        let reason = if subject.contains(char::is_whitespace) {
            "NATS subjects cannot contain whitespace"
        } else {
            reason
        };
        Err(Error::InvalidAddress {
            address: subject.to_owned(),
            reason: reason.into(),
        })
    };
    if subject.is_empty() {
        return bad("empty subject");
    }
    let bytes = subject.as_bytes();
    let mut token_start = 0;
    for i in 0..=bytes.len() {
        let b = bytes.get(i).copied();
        if b != Some(b'.') && b.is_some() {
            continue;
        }
        let token = &bytes[token_start..i];
        let last = b.is_none();
        if token.is_empty() {
            return bad("empty subject token (leading, trailing or double dot)");
        }
        if let [w @ (b'*' | b'>')] = token {
            if *w == b'>' && !last {
                return bad("`>` must be the last token");
            }
            if !wildcards {
                return bad("cannot publish to a wildcard subject");
            }
        }
        token_start = i + 1;
    }
    if subject.contains(char::is_whitespace) {
        return bad("NATS subjects cannot contain whitespace");
    }
    Ok(())
}

/// Eight copies of one byte.
const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// The high bit of every byte of `w` that is zero (exact: no carries between bytes).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    let low7 = splat(0x7f);
    !(((w & low7) + low7) | w) & splat(0x80)
}

/// True when the eight bytes of `w` (in memory order) are all printable ASCII (above `' '`),
/// none is `*` or `>`, and no two neighbours are both `.`.
#[inline(always)]
fn plain_window(w: u64) -> bool {
    let dots = zero_bytes(w ^ splat(b'.'));
    let wildcards = zero_bytes(w ^ splat(b'*')) | zero_bytes(w ^ splat(b'>'));
    // High bit set: not ASCII. Otherwise `b + 0x5f` reaches the high bit iff `b >= 0x21`.
    let control_or_space = !((w & splat(0x7f)) + splat(0x80 - 0x21));
    let unusual = (control_or_space | w) & splat(0x80);
    // In memory order byte `i + 1` is the next more significant byte.
    (wildcards | unusual | (dots & (dots << 8))) == 0
}

/// True when `bytes` is certainly a valid concrete subject: not empty, printable ASCII
/// without whitespace, no `*` or `>`, no empty token. False means "check exactly": it may be
/// valid all the same (a wildcard token, UTF-8 text).
#[inline]
fn plain_subject(bytes: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if first == b'.' || last == b'.' {
        return false;
    }
    let n = bytes.len();
    if n < 8 {
        // Short: one byte at a time (a padded word would need a copy).
        let mut prev_dot = false;
        for &b in bytes {
            let dot = b == b'.';
            if (dot && prev_dot) || b <= b' ' || !b.is_ascii() || b == b'*' || b == b'>' {
                return false;
            }
            prev_dot = dot;
        }
        return true;
    }
    let word = |at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    // Windows overlap by one byte, so every pair of neighbours lies in one window; the last
    // window ends at the end.
    let mut at = 0;
    while at + 8 < n {
        if !plain_window(word(at)) {
            return false;
        }
        at += 7;
    }
    plain_window(word(n - 8))
}
/// Build NATS headers for `message`: its headers (with `content-type` spelled
/// `Content-Type`, and left out when it equals `implicit_content_type`), plus
/// `correlation-id` and, when asked, the reply-to header. `None` when nothing is left.
#[inline]
pub fn to_nats_headers(
    message: &OutgoingMessage,
    reply_header: bool,
    implicit_content_type: Option<&str>,
) -> Result<Option<HeaderMap>> {
    // The common typed publish (no headers, or only the implicit content type) is decided
    // here, inlined into the publish; everything else is built out of line.
    if message.correlation_id.is_none()
        && !(reply_header && message.reply_to.is_some())
        && only_implicit(&message.headers, implicit_content_type)
    {
        return Ok(None);
    }
    build_nats_headers(message, reply_header, implicit_content_type)
}

/// True when `headers` is empty or holds just `content-type: implicit_content_type`.
#[inline]
fn only_implicit(headers: &Headers, implicit_content_type: Option<&str>) -> bool {
    if headers.is_empty() {
        return true;
    }
    let Some(implicit) = implicit_content_type else {
        return false;
    };
    if headers.len() != 1 {
        return false;
    }
    // The value first: its length alone usually tells a different content type apart.
    headers
        .iter()
        .next()
        .is_some_and(|(name, value)| value == implicit && name == names::CONTENT_TYPE)
}

/// [`to_nats_headers`] past its fast path.
#[inline(never)]
fn build_nats_headers(
    message: &OutgoingMessage,
    reply_header: bool,
    implicit_content_type: Option<&str>,
) -> Result<Option<HeaderMap>> {
    let extra_corr = message
        .correlation_id
        .as_deref()
        .filter(|_| message.headers.get(names::CORRELATION_ID).is_none());
    let extra_reply = message.reply_to.as_deref().filter(|_| reply_header);
    // FastStream reads only `correlation_id`: mirror the correlation id there.
    let faststream_corr = extra_corr
        .or_else(|| message.headers.get(names::CORRELATION_ID))
        .filter(|_| message.headers.get(FASTSTREAM_CORRELATION_ID).is_none());
    let implicit = |name: &str, value: &str| {
        name == names::CONTENT_TYPE && implicit_content_type == Some(value)
    };
    let sent = || message.headers.iter().filter(|(n, v)| !implicit(n, v));
    let nothing_sent = match message.headers.len() {
        0 => true,
        1 => sent().next().is_none(),
        _ => false,
    };
    if nothing_sent && faststream_corr.is_none() && extra_reply.is_none() {
        return Ok(None);
    }
    if faststream_corr.is_none() && extra_reply.is_none() && message.headers.len() == 1 {
        if let Some((names::CONTENT_TYPE, value)) = sent().next() {
            // The default configuration's typed publish: only the content type.
            return content_type_map(value).map(Some);
        }
    }
    let mut map = HeaderMap::new();
    // With one header there is nothing to append to: `insert` hashes the name once
    // (`append` looks it up first, then inserts).
    let single = message.headers.len() == 1;
    for (name, value) in sent() {
        let wire = if name == names::CONTENT_TYPE {
            // Made from a constant: no parsing, no copy.
            NATS_CONTENT_TYPE_NAME
        } else {
            header_name(name)?
        };
        let value = header_value(name, value)?;
        if single {
            map.insert(wire, value);
        } else {
            map.append(wire, value);
        }
    }
    if let Some(c) = extra_corr {
        // No header of that name was sent (`extra_corr` says so): an insert.
        map.insert(CORRELATION_ID_NAME, header_value(names::CORRELATION_ID, c)?);
    }
    if let Some(c) = faststream_corr {
        map.insert(
            FASTSTREAM_CORRELATION_ID_NAME,
            header_value(names::CORRELATION_ID, c)?,
        );
    }
    if let Some(r) = extra_reply {
        map.insert(REPLY_TO_HEADER, r);
    }
    Ok(Some(map))
}

/// [`NATS_CONTENT_TYPE`] as a header name.
const NATS_CONTENT_TYPE_NAME: HeaderName = HeaderName::from_static(NATS_CONTENT_TYPE);
/// The `correlation-id` header name.
const CORRELATION_ID_NAME: HeaderName = HeaderName::from_static(names::CORRELATION_ID);
/// The `correlation_id` header name.
const FASTSTREAM_CORRELATION_ID_NAME: HeaderName =
    HeaderName::from_static(FASTSTREAM_CORRELATION_ID);

/// Most content types [`content_type_map`] keeps per thread.
const CONTENT_TYPE_MAPS_MAX: usize = 8;

thread_local! {
    /// Header maps holding just one `Content-Type`, by value, built once per thread.
    static CONTENT_TYPE_MAPS: RefCell<Vec<(Box<str>, HeaderMap)>> = const { RefCell::new(Vec::new()) };
}

/// A header map holding just `Content-Type: value`. Cloning a map built before copies its
/// table instead of hashing the name and growing a new one (about half the cost); the first
/// [`CONTENT_TYPE_MAPS_MAX`] content types seen on a thread are kept.
fn content_type_map(value: &str) -> Result<HeaderMap> {
    CONTENT_TYPE_MAPS.with(|maps| {
        let mut maps = maps.borrow_mut();
        if let Some((_, map)) = maps.iter().find(|(v, _)| **v == *value) {
            return Ok(map.clone());
        }
        let mut map = HeaderMap::new();
        map.insert(
            NATS_CONTENT_TYPE_NAME,
            header_value(names::CONTENT_TYPE, value)?,
        );
        if maps.len() < CONTENT_TYPE_MAPS_MAX {
            maps.push((value.into(), map.clone()));
        }
        Ok(map)
    })
}

/// `name` as a NATS header name, or why it cannot be one.
fn header_name(name: &str) -> Result<HeaderName> {
    HeaderName::from_str(name).map_err(|_| Error::InvalidHeader {
        name: name.to_owned(),
        reason: "NATS header names are printable ASCII without `:`".into(),
    })
}

/// `value` (of header `name`) as a NATS header value, or why it cannot be one.
fn header_value(name: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| Error::InvalidHeader {
        name: name.to_owned(),
        reason: "NATS header values cannot contain CR or LF".into(),
    })
}

/// Convert received NATS headers (any spelling of `Content-Type` becomes `content-type`).
pub fn from_nats_headers(map: Option<&HeaderMap>) -> Headers {
    let Some(map) = map else {
        return Headers::new();
    };
    let mut out = Headers::with_capacity(map.len());
    for (name, values) in map.iter() {
        let n: &str = name.as_ref();
        if n.eq_ignore_ascii_case(names::CONTENT_TYPE) {
            // The usual content types are kept as static text: no allocation.
            for v in values {
                match COMMON_CONTENT_TYPES.iter().find(|ct| **ct == v.as_str()) {
                    Some(ct) => out.append_static(names::CONTENT_TYPE, ct),
                    None => out.append(names::CONTENT_TYPE, v.as_str()),
                }
            }
        } else {
            for v in values {
                out.append(n, v.as_str());
            }
        }
    }
    out
}

/// Content types a received header is matched against to avoid copying it.
const COMMON_CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/msgpack",
    "application/cbor",
    "text/plain",
    "application/octet-stream",
];

/// `stream`, ended as soon as `closed` turns true (the connection shut down).
///
/// The shutdown signal is one future made once per subscription and polled only while
/// `stream` has nothing ready; while messages are flowing each item costs one atomic load of
/// the signal's version.
pub struct UntilClosed<S> {
    stream: S,
    closed: watch::Receiver<bool>,
    /// Resolves once `closed` is true.
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
}

impl<S> UntilClosed<S> {
    /// `stream` until `closed` turns true.
    pub fn new(stream: S, closed: watch::Receiver<bool>) -> Self {
        let mut signal = closed.clone();
        UntilClosed {
            stream,
            closed,
            signal: Box::pin(async move {
                loop {
                    if *signal.borrow_and_update() {
                        return;
                    }
                    if signal.changed().await.is_err() {
                        // Every connection handle is gone; keep the stream until it ends itself.
                        std::future::pending::<()>().await;
                    }
                }
            }),
            ended: false,
        }
    }

    #[inline]
    fn closed_now(&mut self) -> bool {
        matches!(self.closed.has_changed(), Ok(true)) && *self.closed.borrow_and_update()
    }
}

impl<S: Stream + Unpin> Stream for UntilClosed<S> {
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        if this.ended || this.closed_now() {
            this.ended = true;
            return Poll::Ready(None);
        }
        match this.stream.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => match this.signal.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.ended = true;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// End `stream` as soon as `closed` turns true (the connection shut down).
pub fn until_closed<S>(stream: S, closed: watch::Receiver<bool>) -> UntilClosed<S>
where
    S: Stream + Unpin,
{
    UntilClosed::new(stream, closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_travel_where_faststream_looks_too() {
        // Set on the message, or carried over as a header (the router's propagation).
        for m in [
            OutgoingMessage::new("s", "{}").correlation_id("c1"),
            OutgoingMessage::new("s", "{}").header(names::CORRELATION_ID, "c1"),
        ] {
            let map = to_nats_headers(&m, false, None).unwrap().expect("headers");
            assert_eq!(map.get("correlation-id").map(|v| v.as_str()), Some("c1"));
            assert_eq!(
                map.get(FASTSTREAM_CORRELATION_ID).map(|v| v.as_str()),
                Some("c1")
            );
        }
        // A FastStream message has only `correlation_id`.
        let mut h = HeaderMap::new();
        h.insert(FASTSTREAM_CORRELATION_ID, "fs-1");
        h.insert("content-type", "application/json");
        let back = from_nats_headers(Some(&h));
        assert_eq!(correlation_of(&back), Some("fs-1"));
        assert_eq!(back.get(names::CONTENT_TYPE), Some("application/json"));
    }

    #[test]
    fn templates_map_to_wildcards() {
        let a = Address::parse("user.{id}.signup").unwrap();
        assert_eq!(subject_for(&a).unwrap(), "user.*.signup");
        let a = Address::parse("{region}.orders.{id}").unwrap();
        assert_eq!(subject_for(&a).unwrap(), "*.orders.*");
        assert_eq!(
            subject_for(&Address::parse("events.>").unwrap()).unwrap(),
            "events.>"
        );
        assert!(subject_for(&Address::parse("orders-{region}").unwrap()).is_err());
        assert!(subject_for(&Address::parse("a..b").unwrap()).is_err());
        assert!(subject_for(&Address::parse("a b").unwrap()).is_err());
        assert!(check_subject("a.*", false).is_err());
        assert!(check_subject("a.*", true).is_ok());
        assert!(check_subject("a.>", true).is_ok());
        assert!(check_subject(">", true).is_ok());
        assert!(check_subject("a.>", false).is_err());
        assert!(check_subject("a.b*.c", false).is_ok());
        assert!(check_subject("a.\u{2003}b", false).is_err());
        assert!(check_subject("a.\tb", false).is_err());
        assert!(check_subject("ä.ö", false).is_ok());
        for bad in ["", ".", "a.", ".a", "a..b"] {
            assert!(check_subject(bad, true).is_err(), "{bad:?}");
        }
        assert!(check_subject("a.>.b", true).is_err());
    }

    /// Every string of up to `max` characters from `alphabet`, passed to `f`.
    fn each_string(alphabet: &[char], max: usize, f: &mut impl FnMut(&str)) {
        fn go(alphabet: &[char], left: usize, s: &mut String, f: &mut impl FnMut(&str)) {
            f(s);
            if left == 0 {
                return;
            }
            for &c in alphabet {
                s.push(c);
                go(alphabet, left - 1, s, f);
                s.pop();
            }
        }
        go(alphabet, max, &mut String::new(), f);
    }

    #[test]
    fn subject_fast_path_agrees_with_the_exact_check() {
        let mut checked = 0usize;
        let mut same = |s: &str| {
            for wildcards in [false, true] {
                let fast = format!("{:?}", check_subject(s, wildcards));
                let exact = format!("{:?}", check_subject_exactly(s, wildcards));
                assert_eq!(fast, exact, "{s:?} wildcards={wildcards}");
            }
            if plain_subject(s.as_bytes()) {
                assert!(check_subject_exactly(s, false).is_ok(), "{s:?}");
            }
            checked += 1;
        };
        // Short subjects over every kind of byte the check tells apart.
        let all = [
            'a', '.', '*', '>', ' ', '\t', '\u{7f}', '!', 'ä', '\u{2003}',
        ];
        each_string(&all, 5, &mut same);
        // Longer ones (one, two and three windows) over the characters that matter most.
        each_string(&['a', '.', '*'], 11, &mut same);
        each_string(&['a', '.'], 17, &mut same);
        for s in [
            "bench.events",
            "smartylighting.streetlights.1.0.event.42.lighting.measured",
            "orders.eu-west.2026.created.v1",
            "a.b.c.d.e.f.g.h.i.j.k.l",
            "aaaaaaa..aaaaaaa",
            "aaaaaaaaaaaaaaa.",
            "aaaaaaaaaaaaaa\u{7f}a",
            "aaaaaaaaaaaaaaa\u{0}",
            "aaaaaaaaaaaaaa a",
            "aaaaaaaaaaaaaaa*",
            "aaaaaaaaaaaaaaa.>",
            "aaaaaaaaaaaaaaaaaaaaaä",
            "aaaaaaaaaa\u{2003}aaaaaaaaaaa",
        ] {
            same(s);
        }
        assert!(checked > 500_000, "{checked}");
        assert!(plain_subject(b"bench.events"));
        assert!(plain_subject(b"a.b"));
    }

    #[test]
    fn until_closed_ends_on_the_signal_even_with_items_ready() {
        use futures_util::FutureExt;
        let (tx, rx) = watch::channel(false);
        let mut s = until_closed(futures_util::stream::iter([1, 2, 3]), rx);
        assert_eq!(s.next().now_or_never(), Some(Some(1)));
        tx.send_replace(true);
        assert_eq!(s.next().now_or_never(), Some(None));
        assert_eq!(s.next().now_or_never(), Some(None));
        let (tx, rx) = watch::channel(false);
        let mut s = until_closed(futures_util::stream::pending::<u8>(), rx);
        assert_eq!(s.next().now_or_never(), None);
        tx.send_replace(true);
        assert_eq!(s.next().now_or_never(), Some(None));
        // The stream's own end ends it too.
        let (_tx, rx) = watch::channel(false);
        let mut s = until_closed(futures_util::stream::iter([7]), rx);
        assert_eq!(s.next().now_or_never(), Some(Some(7)));
        assert_eq!(s.next().now_or_never(), Some(None));
    }

    #[test]
    fn an_implicit_content_type_is_left_out() {
        let json = OutgoingMessage::new("a", "x").content_type("application/json");
        let implicit = Some("application/json");
        assert!(to_nats_headers(&json, false, implicit).unwrap().is_none());
        let map = to_nats_headers(&json, false, Some("text/plain"))
            .unwrap()
            .unwrap();
        assert_eq!(
            map.get(NATS_CONTENT_TYPE).map(|v| v.as_str()),
            Some("application/json")
        );
        let map = to_nats_headers(&json.correlation_id("c1"), false, implicit)
            .unwrap()
            .unwrap();
        assert!(map.get(NATS_CONTENT_TYPE).is_none());
        assert_eq!(map.get("correlation-id").map(|v| v.as_str()), Some("c1"));
    }

    #[test]
    fn only_an_implicit_content_type_is_nothing_to_send() {
        let implicit = Some("application/json");
        let none = |m: &OutgoingMessage, reply: bool, implicit: Option<&str>| {
            to_nats_headers(m, reply, implicit).unwrap().is_none()
        };
        let plain = OutgoingMessage::new("a", "x");
        assert!(none(&plain, false, None) && none(&plain, true, implicit));
        // A reply subject travels as a header only when asked.
        let reply = OutgoingMessage::new("a", "x").reply_to("r");
        assert!(none(&reply, false, implicit));
        let map = to_nats_headers(&reply, true, implicit).unwrap().unwrap();
        assert_eq!(map.get(REPLY_TO_HEADER).map(|v| v.as_str()), Some("r"));
        // Same value under another name, or another value: sent.
        let other = OutgoingMessage::new("a", "x").header("x-type", "application/json");
        let map = to_nats_headers(&other, false, implicit).unwrap().unwrap();
        assert_eq!(
            map.get("x-type").map(|v| v.as_str()),
            Some("application/json")
        );
        let text = OutgoingMessage::new("a", "x").content_type("text/plain");
        assert!(!none(&text, false, implicit));
        // Two headers, one of them the implicit content type: only the other is sent.
        let two = OutgoingMessage::new("a", "x")
            .content_type("application/json")
            .header("x-a", "1");
        let map = to_nats_headers(&two, false, implicit).unwrap().unwrap();
        assert!(map.get(NATS_CONTENT_TYPE).is_none());
        assert_eq!(map.get("x-a").map(|v| v.as_str()), Some("1"));
    }

    #[test]
    fn a_lone_content_type_map_is_the_same_built_or_reused() {
        let built = |ct: &str| {
            let mut map = HeaderMap::new();
            map.insert(NATS_CONTENT_TYPE, ct);
            map
        };
        // More content types than are kept, each asked for twice.
        for round in 0..2 {
            for i in 0..CONTENT_TYPE_MAPS_MAX + 3 {
                let ct = format!("application/x-{i}");
                let msg = OutgoingMessage::new("a", "x").content_type(ct.clone());
                let map = to_nats_headers(&msg, false, None).unwrap().unwrap();
                assert_eq!(map, built(&ct), "round {round}, {ct}");
            }
        }
        // A bad value is refused every time, not kept.
        for _ in 0..2 {
            let bad = OutgoingMessage::new("a", "x").content_type("a\r\nb");
            assert!(matches!(
                to_nats_headers(&bad, false, None),
                Err(Error::InvalidHeader { .. })
            ));
        }
        // With a correlation id or a reply header the map is built as before.
        let corr = OutgoingMessage::new("a", "x")
            .content_type("application/json")
            .correlation_id("c1");
        let map = to_nats_headers(&corr, false, None).unwrap().unwrap();
        assert_eq!(map.get("correlation-id").map(|v| v.as_str()), Some("c1"));
        assert_eq!(
            map.get(NATS_CONTENT_TYPE).map(|v| v.as_str()),
            Some("application/json")
        );
        let reply = OutgoingMessage::new("a", "x")
            .content_type("application/json")
            .reply_to("r");
        let map = to_nats_headers(&reply, true, None).unwrap().unwrap();
        assert_eq!(map.get(REPLY_TO_HEADER).map(|v| v.as_str()), Some("r"));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn headers_round_trip_with_nats_content_type() {
        let msg = OutgoingMessage::new("a", "x")
            .content_type("application/json")
            .header("x-empty", "")
            .correlation_id("c1");
        let map = to_nats_headers(&msg, false, None).unwrap().unwrap();
        assert_eq!(
            map.get(NATS_CONTENT_TYPE).map(|v| v.as_str()),
            Some("application/json")
        );
        let back = from_nats_headers(Some(&map));
        assert_eq!(back.get("content-type"), Some("application/json"));
        let mut other = HeaderMap::new();
        other.insert("content-TYPE", "application/vnd.x+json");
        let back_other = from_nats_headers(Some(&other));
        assert_eq!(
            back_other.get("content-type"),
            Some("application/vnd.x+json")
        );
        assert_eq!(back.get("x-empty"), Some(""));
        assert_eq!(back.get("correlation-id"), Some("c1"));
        let bad = OutgoingMessage::new("a", "x").header("x", "a\r\nb");
        assert!(matches!(
            to_nats_headers(&bad, false, None),
            Err(Error::InvalidHeader { .. })
        ));
        assert!(
            to_nats_headers(&OutgoingMessage::new("a", "x"), false, None)
                .unwrap()
                .is_none()
        );
    }
}
