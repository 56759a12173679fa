//! Address templates to MQTT topic filters.

use ruststream::{Address, Error, Result};

/// The MQTT filter of a template: every topic level holding a `{param}` becomes `+`.
///
/// A parameter that shares its level with literal text (`orders-{region}`) still maps to `+`
/// for the whole level; deliveries are then filtered against the template, so only matching
/// topics reach the subscription.
pub fn filter(address: &Address) -> Result<String> {
    let raw = address.as_str();
    if raw.is_empty() {
        return Err(invalid(raw, "empty topic"));
    }
    if raw.contains(['+', '#']) {
        return Err(invalid(
            raw,
            "MQTT wildcards (`+`, `#`) are written as `{param}` templates",
        ));
    }
    // Mark parameter positions with a character that cannot appear in a topic (NUL).
    let marked = address.to_wildcard(|_| "\0".to_owned());
    let levels: Vec<&str> = marked
        .split('/')
        .map(|level| if level.contains('\0') { "+" } else { level })
        .collect();
    Ok(levels.join("/"))
}

/// Check a concrete topic for publishing.
pub fn check_topic(topic: &str) -> Result<()> {
    if topic.is_empty() {
        return Err(invalid(topic, "empty topic"));
    }
    if topic.contains(['+', '#', '\0']) {
        return Err(invalid(
            topic,
            "a topic to publish to cannot contain `+`, `#` or NUL",
        ));
    }
    Ok(())
}

/// Check a shared-subscription group name.
pub fn check_group(group: &str) -> Result<()> {
    if group.is_empty() || group.contains(['/', '+', '#']) {
        return Err(Error::Config(format!(
            "mqtt: queue group {group:?} must be non-empty without `/`, `+` or `#`"
        )));
    }
    Ok(())
}

fn invalid(address: &str, reason: &'static str) -> Error {
    Error::InvalidAddress {
        address: address.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = |t: &str| filter(&Address::parse(t).unwrap()).unwrap();
        assert_eq!(f("a/{b}/c"), "a/+/c");
        assert_eq!(f("{x}/y"), "+/y");
        assert_eq!(f("orders-{region}/x"), "+/x");
        assert_eq!(f("plain/topic"), "plain/topic");
        assert!(filter(&Address::parse("a/#").unwrap()).is_err());
        assert!(check_topic("a/+/b").is_err());
        assert!(check_group("g/1").is_err());
    }
}
