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

use crate::binding::AddressBinding;
use crate::config::{Config, ExchangeKind};

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

/// Where a concrete address is published: exchange, routing key, and the address's binding
/// rule (message properties), if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) exchange: &'a str,
    pub(crate) routing_key: &'a str,
    pub(crate) rule: Option<&'a AddressBinding>,
}

/// The exchange and routing key a concrete address is published with: a reply queue or an
/// `is: queue` channel through the default exchange; an address with an exchange binding
/// through that exchange; any other through [`Config::exchange`].
pub(crate) fn publish_target<'a>(config: &'a Config, address: &'a str) -> Result<Target<'a>> {
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
        return Ok(Target {
            exchange: "",
            routing_key: address,
            rule: None,
        });
    }
    let default_exchange = match config.exchange_kind {
        ExchangeKind::Default => "",
        _ => config.exchange.as_str(),
    };
    let rule = config.binding_for(address);
    let (exchange, routing_key) = match rule {
        Some(r) if r.is_queue => ("", r.queue_name(address)),
        Some(AddressBinding {
            exchange: Some(e), ..
        }) => (e.name.as_str(), address),
        _ => (default_exchange, address),
    };
    Ok(Target {
        exchange,
        routing_key,
        rule,
    })
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
        ExchangeKind::Default => {
            if !address.is_concrete() {
                return Err(invalid(
                    raw,
                    "the default exchange routes to the queue named by the routing key; \
                     templates with parameters need a topic (or fanout) exchange",
                ));
            }
            Ok(Binding {
                pattern: raw.to_owned(),
                filter: false,
            })
        }
        ExchangeKind::Fanout | ExchangeKind::Headers => Ok(Binding {
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
        let c = Config::default().exchange("ex", ExchangeKind::Topic);
        let t = |c: &Config, a: &str| {
            let t = publish_target(c, a).unwrap();
            (t.exchange.to_owned(), t.routing_key.to_owned())
        };
        assert_eq!(t(&c, "a.b"), ("ex".into(), "a.b".into()));
        assert_eq!(
            t(&c, "amq.rabbitmq.reply-to.abc"),
            ("".into(), "amq.rabbitmq.reply-to.abc".into())
        );
        assert!(publish_target(&c, &"x".repeat(256)).is_err());
        let bound = c
            .clone()
            .with_spec_bindings(
                &[
                    (
                        "q",
                        r#"{"channel":{"amqp":{"is":"queue","queue":{"name":"jobs"}}}}"#,
                    ),
                    (
                        "e",
                        r#"{"channel":{"amqp":{"exchange":{"name":"other","type":"fanout"}}}}"#,
                    ),
                ],
                &[("q", "work.{id}"), ("e", "events")],
            )
            .unwrap();
        assert_eq!(t(&bound, "work.1"), ("".into(), "jobs".into()));
        assert_eq!(t(&bound, "events"), ("other".into(), "events".into()));
        assert_eq!(t(&bound, "a.b"), ("ex".into(), "a.b".into()));
        let default = Config::default().exchange("", ExchangeKind::Default);
        assert_eq!(t(&default, "q1"), ("".into(), "q1".into()));
    }
}
