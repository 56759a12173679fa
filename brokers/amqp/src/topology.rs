//! Address mapping: concrete addresses are routing keys; templates become binding patterns.
//!
//! On a topic exchange an address is split into words at `.`; every word that contains a
//! `{param}` becomes `*` (one word). A `/` is an ordinary character of a word, so
//! `user/{id}/signup` is one word and binds as `*`: the subscription then keeps only the
//! messages whose routing key matches the template (client-side check with
//! [`Address::matches`], others are acked and skipped). The same check runs on every
//! subscription to a template, and on every subscription of a fanout exchange, which ignores
//! routing keys.
//!
//! Replies: an address starting with one of [`QUEUE_ADDRESS_PREFIXES`] names a queue (direct
//! reply-to, or a server-named `amq.gen-…` reply queue of another AMQP client) and is published
//! through the default exchange.

use ruststream::address::Segment;
use ruststream::{Address, Error, Result};

use crate::config::ExchangeKind;

/// Longest routing key or binding pattern AMQP carries (a short string).
pub(crate) const MAX_KEY_LEN: usize = 255;

/// Addresses with this prefix are RabbitMQ direct reply-to queues.
pub(crate) const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Addresses with these prefixes name queues, not routing keys of the exchange: direct
/// reply-to and server-named queues (`amq.gen-…`, the usual exclusive reply queue of AMQP RPC
/// clients). Messages to them go through the default exchange, which routes by queue name.
pub const QUEUE_ADDRESS_PREFIXES: &[&str] = &[DIRECT_REPLY_TO, "amq.gen-"];

/// How a subscription to a template binds its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// Binding key (ignored by fanout exchanges).
    pub(crate) pattern: String,
    /// Whether delivered routing keys must be checked against the template.
    pub(crate) filter: bool,
}

fn invalid(address: &str, reason: &'static str) -> Error {
    Error::InvalidAddress {
        address: address.to_owned(),
        reason: reason.into(),
    }
}

/// The exchange and routing key a concrete address is published with.
pub(crate) fn publish_target<'a>(exchange: &'a str, address: &str) -> Result<&'a str> {
    if address.len() > MAX_KEY_LEN {
        return Err(invalid(
            address,
            "longer than 255 bytes (AMQP routing key limit)",
        ));
    }
    if QUEUE_ADDRESS_PREFIXES
        .iter()
        .any(|p| address.starts_with(p))
    {
        Ok("")
    } else {
        Ok(exchange)
    }
}

/// The binding for a subscription to `address` on an exchange of type `kind`.
pub(crate) fn binding_for(address: &Address, kind: ExchangeKind) -> Result<Binding> {
    let raw = address.as_str();
    if raw.len() > MAX_KEY_LEN {
        return Err(invalid(
            raw,
            "longer than 255 bytes (AMQP routing key limit)",
        ));
    }
    match kind {
        ExchangeKind::Direct => {
            if !address.is_concrete() {
                return Err(invalid(
                    raw,
                    "a direct exchange matches routing keys exactly; templates with parameters \
                     need a topic (or fanout) exchange",
                ));
            }
            Ok(Binding {
                pattern: raw.to_owned(),
                filter: false,
            })
        }
        ExchangeKind::Fanout => Ok(Binding {
            pattern: String::new(),
            filter: true,
        }),
        ExchangeKind::Topic => {
            let mut words: Vec<(String, usize)> = vec![(String::new(), 0)];
            for segment in address.segments() {
                match segment {
                    Segment::Literal(literal) => {
                        if literal.contains(['*', '#']) {
                            return Err(invalid(
                                raw,
                                "`*` and `#` are AMQP topic wildcards; use `{param}` in templates",
                            ));
                        }
                        for (i, part) in literal.split('.').enumerate() {
                            if i > 0 {
                                words.push((String::new(), 0));
                            }
                            if let Some(last) = words.last_mut() {
                                last.0.push_str(part);
                            }
                        }
                    }
                    Segment::Param(_) => {
                        if let Some(last) = words.last_mut() {
                            last.1 += 1;
                        }
                    }
                }
            }
            let pattern = words
                .iter()
                .map(|(text, params)| if *params > 0 { "*" } else { text.as_str() })
                .collect::<Vec<_>>()
                .join(".");
            Ok(Binding {
                pattern,
                filter: !address.is_concrete(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(t: &str) -> Binding {
        binding_for(&Address::parse(t).unwrap(), ExchangeKind::Topic).unwrap()
    }

    #[test]
    fn topic_patterns() {
        assert_eq!(topic("a.b.c").pattern, "a.b.c");
        assert!(!topic("a.b.c").filter);
        assert_eq!(topic("a.{x}.c.{y}").pattern, "a.*.c.*");
        assert!(topic("a.{x}.c").filter);
        assert_eq!(topic("orders-{region}.created").pattern, "*.created");
        assert_eq!(topic("user/{id}/signup").pattern, "*");
        assert_eq!(topic("{id}").pattern, "*");
        assert!(binding_for(&Address::parse("a.#").unwrap(), ExchangeKind::Topic).is_err());
    }

    #[test]
    fn direct_and_fanout() {
        let a = Address::parse("a.{x}").unwrap();
        assert!(matches!(
            binding_for(&a, ExchangeKind::Direct),
            Err(Error::InvalidAddress { .. })
        ));
        let b = Address::parse("a.b").unwrap();
        assert_eq!(
            binding_for(&b, ExchangeKind::Direct).unwrap().pattern,
            "a.b"
        );
        assert!(binding_for(&b, ExchangeKind::Fanout).unwrap().filter);
    }

    #[test]
    fn publish_targets() {
        assert_eq!(publish_target("ex", "a.b").unwrap(), "ex");
        assert_eq!(
            publish_target("ex", "amq.rabbitmq.reply-to.abc").unwrap(),
            ""
        );
        assert!(publish_target("ex", &"x".repeat(256)).is_err());
    }
}
