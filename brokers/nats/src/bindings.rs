//! AsyncAPI NATS bindings: the operation binding's `queue` becomes
//! [`SubscribeOptions::queue_group`].
//!
//! The [NATS operation binding](https://github.com/asyncapi/bindings/tree/master/nats) names the
//! queue group that subscribers of an operation join, so each message goes to one member:
//!
//! ```yaml
//! operations:
//!   receiveLightMeasurement:
//!     action: receive
//!     bindings:
//!       nats:
//!         queue: lighting-workers
//! ```
//!
//! Read it from the document an application embeds (e.g. the generated `ASYNCAPI_JSON`) with
//! [`operation_queue`], or from a binding value with [`queue_group`], and subscribe with
//! [`subscribe_options`]:
//!
//! ```
//! use ruststream::SubscribeOptions;
//! use ruststream_nats::bindings;
//!
//! let spec = r#"{"asyncapi": "3.0.0", "operations": {"receiveLightMeasurement":
//!     {"action": "receive", "bindings": {"nats": {"queue": "lighting-workers"}}}}}"#;
//! let queue = bindings::operation_queue(spec, "receiveLightMeasurement")?;
//! assert_eq!(queue.as_deref(), Some("lighting-workers"));
//!
//! let binding = serde_json::json!({"nats": {"queue": "lighting-workers", "bindingVersion": "0.1.0"}});
//! let options = bindings::subscribe_options(&binding, SubscribeOptions::new())?;
//! assert_eq!(options.queue_group.as_deref(), Some("lighting-workers"));
//! # Ok::<(), ruststream::Error>(())
//! ```

use ruststream::{Error, Result, SubscribeOptions};
use serde_json::Value;

/// Longest queue name the binding allows.
const MAX_QUEUE_LEN: usize = 255;

/// The `queue` of a NATS binding: either the binding itself (`{"queue": "q"}`) or a bindings
/// object holding it (`{"nats": {"queue": "q"}}`). `Ok(None)` when there is no queue; an
/// [`Error::Config`] when the queue is not a non-empty string of at most 255 characters
/// without whitespace.
pub fn queue_group(binding: &Value) -> Result<Option<String>> {
    let binding = binding.get("nats").unwrap_or(binding);
    let queue = match binding.get("queue") {
        None | Some(Value::Null) => return Ok(None),
        Some(q) => q,
    };
    let bad = |why: &str| {
        Err(Error::Config(format!(
            "nats binding: `queue` {why}: {queue}"
        )))
    };
    let Some(q) = queue.as_str() else {
        return bad("must be a string");
    };
    if q.is_empty() {
        return bad("is empty");
    }
    if q.chars().count() > MAX_QUEUE_LEN {
        return bad("is longer than 255 characters");
    }
    if q.contains(char::is_whitespace) {
        return bad("cannot contain whitespace");
    }
    Ok(Some(q.to_owned()))
}

/// `options` with its queue group set from `binding` (see [`queue_group`]); unchanged when
/// the binding has no queue.
pub fn subscribe_options(binding: &Value, options: SubscribeOptions) -> Result<SubscribeOptions> {
    Ok(match queue_group(binding)? {
        Some(q) => options.queue_group(q),
        None => options,
    })
}

/// The NATS `queue` bound to `operation` in an AsyncAPI document (JSON, 3.x or 2.x): the
/// operation's own binding (inline, through a local `$ref`, or from its traits), else its
/// channel's. `Ok(None)` when the operation has no NATS queue; [`Error::Config`] when the
/// document is not JSON or the operation does not exist.
pub fn operation_queue(spec_json: &str, operation: &str) -> Result<Option<String>> {
    let doc: Value = serde_json::from_str(spec_json)
        .map_err(|e| Error::Config(format!("nats binding: the document is not JSON: {e}")))?;
    let (op, channel) = find_operation(&doc, operation).ok_or_else(|| {
        Error::Config(format!(
            "nats binding: no operation `{operation}` in the document"
        ))
    })?;
    let mut sources: Vec<&Value> = vec![op];
    if let Some(traits) = op.get("traits").and_then(Value::as_array) {
        // Later traits win in AsyncAPI, and the operation's own binding wins over traits.
        sources.extend(traits.iter().rev().map(|t| resolve(&doc, t)));
    }
    if let Some(ch) = channel {
        sources.push(ch);
    }
    for source in sources {
        if let Some(bindings) = source.get("bindings").map(|b| resolve(&doc, b)) {
            let nats = bindings.get("nats").map(|n| resolve(&doc, n));
            if let Some(queue) = nats.map(queue_group).transpose()?.flatten() {
                return Ok(Some(queue));
            }
        }
    }
    Ok(None)
}

/// The operation named `name` and its channel: 3.x `operations.<name>` (channel through
/// `$ref`), or a 2.x `channels.<c>.publish/subscribe` with that `operationId`.
fn find_operation<'a>(doc: &'a Value, name: &str) -> Option<(&'a Value, Option<&'a Value>)> {
    if let Some(op) = doc.get("operations").and_then(|o| o.get(name)) {
        let op = resolve(doc, op);
        let channel = op.get("channel").map(|c| resolve(doc, c));
        return Some((op, channel));
    }
    let channels = doc.get("channels")?.as_object()?;
    channels.values().find_map(|ch| {
        let ch = resolve(doc, ch);
        ["publish", "subscribe"].into_iter().find_map(|kind| {
            let op = resolve(doc, ch.get(kind)?);
            (op.get("operationId")?.as_str()? == name).then_some((op, Some(ch)))
        })
    })
}

/// Follow a local `$ref` (`#/components/...`); anything else is returned as is.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let mut value = value;
    // Bounded: a cycle of `$ref`s stops after a few hops.
    for _ in 0..8 {
        match value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| doc.pointer(p))
        {
            Some(target) => value = target,
            None => break,
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_is_read_from_a_binding_or_a_bindings_object() {
        assert_eq!(
            queue_group(&json!({"queue": "q1"})).unwrap().as_deref(),
            Some("q1")
        );
        assert_eq!(
            queue_group(&json!({"nats": {"queue": "q2", "bindingVersion": "0.1.0"}}))
                .unwrap()
                .as_deref(),
            Some("q2")
        );
        assert_eq!(queue_group(&json!({"nats": {}})).unwrap(), None);
        assert_eq!(queue_group(&json!({"mqtt": {"qos": 1}})).unwrap(), None);
        for bad in [
            json!({"queue": 3}),
            json!({"queue": ""}),
            json!({"queue": "a b"}),
            json!({"queue": "x".repeat(256)}),
        ] {
            assert!(matches!(queue_group(&bad), Err(Error::Config(_))), "{bad}");
        }
        let o = subscribe_options(&json!({"queue": "g"}), SubscribeOptions::new()).unwrap();
        assert_eq!(o.queue_group.as_deref(), Some("g"));
        let o = subscribe_options(&json!({}), SubscribeOptions::new().queue_group("keep")).unwrap();
        assert_eq!(o.queue_group.as_deref(), Some("keep"));
    }

    #[test]
    fn operation_queue_reads_3x_and_2x_documents() {
        let v3 = json!({
            "asyncapi": "3.0.0",
            "channels": {"measured": {"address": "lights/{id}", "bindings": {"nats": {"queue": "from-channel"}}}},
            "operations": {
                "own": {"action": "receive", "channel": {"$ref": "#/channels/measured"},
                        "bindings": {"nats": {"queue": "own-queue"}}},
                "byRef": {"action": "receive", "bindings": {"$ref": "#/components/operationBindings/workers"}},
                "byTrait": {"action": "receive", "traits": [{"$ref": "#/components/operationTraits/t"}]},
                "byChannel": {"action": "receive", "channel": {"$ref": "#/channels/measured"}},
                "none": {"action": "send"}
            },
            "components": {
                "operationBindings": {"workers": {"nats": {"queue": "ref-queue"}}},
                "operationTraits": {"t": {"bindings": {"nats": {"queue": "trait-queue"}}}}
            }
        })
        .to_string();
        for (op, want) in [
            ("own", Some("own-queue")),
            ("byRef", Some("ref-queue")),
            ("byTrait", Some("trait-queue")),
            ("byChannel", Some("from-channel")),
            ("none", None),
        ] {
            assert_eq!(operation_queue(&v3, op).unwrap().as_deref(), want, "{op}");
        }
        assert!(matches!(
            operation_queue(&v3, "missing"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            operation_queue("not json", "x"),
            Err(Error::Config(_))
        ));

        let v2 = json!({
            "asyncapi": "2.6.0",
            "channels": {"user/signedup": {"subscribe": {"operationId": "onSignup",
                "bindings": {"nats": {"queue": "signup-workers"}}}}}
        })
        .to_string();
        assert_eq!(
            operation_queue(&v2, "onSignup").unwrap().as_deref(),
            Some("signup-workers")
        );
    }
}
