//! Mapping between the core contract and NATS: subjects, headers, subscription closing.

use std::str::FromStr;

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use futures_core::Stream;
use futures_util::StreamExt;
use ruststream::address::Segment;
use ruststream::message::names;
use ruststream::{Address, Error, Headers, OutgoingMessage, Result};
use tokio::sync::watch;

/// The NATS spelling of the contract's `content-type` header (what other NATS clients use).
pub const NATS_CONTENT_TYPE: &str = "Content-Type";

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
pub fn check_subject(subject: &str, wildcards: bool) -> Result<()> {
    let bad = |reason: &'static str| Error::InvalidAddress {
        address: subject.to_owned(),
        reason: reason.into(),
    };
    if subject.is_empty() {
        return Err(bad("empty subject"));
    }
    if subject.contains(|c: char| c.is_whitespace()) {
        return Err(bad("NATS subjects cannot contain whitespace"));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Err(bad("empty subject token (leading, trailing or double dot)"));
        }
        let wildcard = *t == "*" || (*t == ">" && i + 1 == tokens.len());
        if wildcard && !wildcards {
            return Err(bad("cannot publish to a wildcard subject"));
        }
        if *t == ">" && i + 1 != tokens.len() {
            return Err(bad("`>` must be the last token"));
        }
    }
    Ok(())
}

/// Build NATS headers for `message`: its headers (with `content-type` spelled
/// `Content-Type`), plus `correlation-id` and, when asked, the reply-to header.
pub fn to_nats_headers(message: &OutgoingMessage, reply_header: bool) -> Result<Option<HeaderMap>> {
    let extra_corr = message
        .correlation_id
        .as_deref()
        .filter(|_| message.headers.get(names::CORRELATION_ID).is_none());
    let extra_reply = message.reply_to.as_deref().filter(|_| reply_header);
    if message.headers.is_empty() && extra_corr.is_none() && extra_reply.is_none() {
        return Ok(None);
    }
    let mut map = HeaderMap::new();
    for (name, value) in message.headers.iter() {
        let wire = if name == names::CONTENT_TYPE {
            NATS_CONTENT_TYPE
        } else {
            name
        };
        append(&mut map, wire, name, value)?;
    }
    if let Some(c) = extra_corr {
        append(&mut map, names::CORRELATION_ID, names::CORRELATION_ID, c)?;
    }
    if let Some(r) = extra_reply {
        map.insert(REPLY_TO_HEADER, r);
    }
    Ok(Some(map))
}

fn append(map: &mut HeaderMap, wire: &str, name: &str, value: &str) -> Result<()> {
    let n = HeaderName::from_str(wire).map_err(|_| Error::InvalidHeader {
        name: name.to_owned(),
        reason: "NATS header names are printable ASCII without `:`".into(),
    })?;
    let v = HeaderValue::from_str(value).map_err(|_| Error::InvalidHeader {
        name: name.to_owned(),
        reason: "NATS header values cannot contain CR or LF".into(),
    })?;
    map.append(n, v);
    Ok(())
}

/// Convert received NATS headers (any spelling of `Content-Type` becomes `content-type`).
pub fn from_nats_headers(map: Option<&HeaderMap>) -> Headers {
    let Some(map) = map else {
        return Headers::new();
    };
    let mut out = Headers::with_capacity(map.len());
    for (name, values) in map.iter() {
        let n: &str = name.as_ref();
        let n = if n.eq_ignore_ascii_case(names::CONTENT_TYPE) {
            names::CONTENT_TYPE
        } else {
            n
        };
        for v in values {
            out.append(n, v.as_str());
        }
    }
    out
}

/// End `stream` as soon as `closed` turns true (the connection shut down).
pub fn until_closed<S, T>(stream: S, closed: watch::Receiver<bool>) -> impl Stream<Item = T> + Send
where
    S: Stream<Item = T> + Send + Unpin + 'static,
    T: Send + 'static,
{
    futures_util::stream::unfold((stream, closed), |(mut stream, mut closed)| async move {
        if *closed.borrow_and_update() {
            return None;
        }
        let shut = async {
            loop {
                if closed.changed().await.is_err() {
                    // Every connection handle is gone; keep the stream until it ends itself.
                    std::future::pending::<()>().await;
                }
                if *closed.borrow_and_update() {
                    return;
                }
            }
        };
        tokio::select! {
            biased;
            () = shut => None,
            item = stream.next() => item.map(|i| (i, (stream, closed))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(check_subject("a.>.b", true).is_err());
    }

    #[test]
    fn headers_round_trip_with_nats_content_type() {
        let msg = OutgoingMessage::new("a", "x")
            .content_type("application/json")
            .header("x-empty", "")
            .correlation_id("c1");
        let map = to_nats_headers(&msg, false).unwrap().unwrap();
        assert_eq!(
            map.get(NATS_CONTENT_TYPE).map(|v| v.as_str()),
            Some("application/json")
        );
        let back = from_nats_headers(Some(&map));
        assert_eq!(back.get("content-type"), Some("application/json"));
        assert_eq!(back.get("x-empty"), Some(""));
        assert_eq!(back.get("correlation-id"), Some("c1"));
        let bad = OutgoingMessage::new("a", "x").header("x", "a\r\nb");
        assert!(matches!(
            to_nats_headers(&bad, false),
            Err(Error::InvalidHeader { .. })
        ));
        assert!(
            to_nats_headers(&OutgoingMessage::new("a", "x"), false)
                .unwrap()
                .is_none()
        );
    }
}
