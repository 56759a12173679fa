//! How addresses become NATS subjects: as they are, or with another separator mapped to `.`.

use std::borrow::Cow;

use ruststream::address::Segment;
use ruststream::{Address, Error, OutgoingMessage, Result};

use crate::util::check_subject;

/// How RustStream addresses map to NATS subjects ([`Config::subject_mapping`]).
///
/// NATS separates subject tokens with `.`, while many AsyncAPI documents use `/`
/// (`smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured`). With
/// [`SubjectMapping::Separator`] the application keeps its addresses and the wire uses NATS
/// tokens:
///
/// | address (what the application sees) | subject (on the wire) |
/// |---|---|
/// | publish `lights/42/measured` | `lights.42.measured` |
/// | subscribe `lights/{id}/measured` | `lights.*.measured` |
/// | subscribe `lights/>` | `lights.>` |
/// | [`IncomingMessage::address`](ruststream::IncomingMessage::address), `reply_to` | mapped back: `lights/42/measured` |
///
/// An address that would change meaning once mapped is refused with
/// [`Error::InvalidAddress`]: one containing `.` (it would split a token), or `*` / `>`
/// anywhere but as a whole subscription token (`a/*/b`, `a/>`). Parameters must be whole
/// tokens (`a/{id}/b`, not `a/x{id}`).
///
/// [`Config::subject_mapping`]: crate::Config::subject_mapping
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectMapping {
    /// Addresses are NATS subjects, unchanged (`orders.{id}.created`). The default.
    #[default]
    Native,
    /// Addresses separate tokens with this character, which becomes `.` on the wire.
    Separator(char),
}

impl SubjectMapping {
    /// Map tokens separated by `separator` to NATS tokens. `'.'` is [`SubjectMapping::Native`].
    pub fn separator(separator: char) -> Self {
        if separator == '.' {
            SubjectMapping::Native
        } else {
            SubjectMapping::Separator(separator)
        }
    }

    /// Refuse separators that already mean something in a subject.
    pub(crate) fn validate(self) -> Result<()> {
        match self {
            SubjectMapping::Separator(c) if matches!(c, '*' | '>') || c.is_whitespace() => {
                Err(Error::Config(format!(
                    "nats: address separator {c:?} cannot be used (NATS wildcard or whitespace)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The NATS subject to publish a concrete `address` to.
    pub fn publish_subject<'a>(&self, address: &'a str) -> Result<Cow<'a, str>> {
        let subject = match *self {
            SubjectMapping::Native => Cow::Borrowed(address),
            SubjectMapping::Separator(sep) => {
                check_mappable(address, address, sep, false)?;
                Cow::Owned(address.replace(sep, "."))
            }
        };
        check_subject(&subject, false).map_err(|e| as_address(e, address))?;
        Ok(subject)
    }

    /// [`publish_subject`](Self::publish_subject) for an owned address: a native address is
    /// checked and returned as it is (no copy).
    #[inline]
    pub(crate) fn publish_subject_owned(&self, address: String) -> Result<String> {
        match self {
            SubjectMapping::Native => {
                check_subject(&address, false)?;
                Ok(address)
            }
            SubjectMapping::Separator(_) => Ok(self.publish_subject(&address)?.into_owned()),
        }
    }

    /// The NATS subject (with wildcards) to subscribe to for a `template`: each `{param}`
    /// becomes `*`, and must be a whole token.
    pub fn subscribe_subject(&self, template: &Address) -> Result<String> {
        let sep = match *self {
            SubjectMapping::Native => return crate::util::subject_for(template),
            SubjectMapping::Separator(sep) => sep,
        };
        let segs = template.segments();
        let mut out = String::with_capacity(template.as_str().len());
        for (i, seg) in segs.iter().enumerate() {
            match seg {
                Segment::Literal(l) => {
                    check_mappable(template.as_str(), l, sep, true)?;
                    out.extend(l.chars().map(|c| if c == sep { '.' } else { c }));
                }
                Segment::Param(p) => {
                    let before =
                        i == 0 || matches!(&segs[i - 1], Segment::Literal(l) if l.ends_with(sep));
                    let after = i + 1 == segs.len()
                        || matches!(&segs[i + 1], Segment::Literal(l) if l.starts_with(sep));
                    if !(before && after) {
                        return Err(Error::InvalidAddress {
                            address: template.as_str().to_owned(),
                            reason: format!(
                                "parameter `{p}` must be a whole token (between `{sep}` separators) \
                                 to map to a NATS wildcard"
                            )
                            .into(),
                        });
                    }
                    out.push('*');
                }
            }
        }
        // Raw `*`/`>` must be whole tokens: check on the mapped tokens.
        for token in out.split('.') {
            if token.len() > 1 && token.contains(['*', '>']) {
                return Err(invalid(
                    template.as_str(),
                    "`*` and `>` are NATS wildcards and may only be whole tokens",
                ));
            }
        }
        check_subject(&out, true).map_err(|e| as_address(e, template.as_str()))?;
        Ok(out)
    }

    /// The address the application sees for a received NATS `subject` (also used for reply
    /// subjects). A subject with a token containing the separator cannot be mapped back
    /// unambiguously and is returned unchanged.
    pub fn address<'a>(&self, subject: &'a str) -> Cow<'a, str> {
        match *self {
            SubjectMapping::Separator(sep) if !subject.contains(sep) => {
                Cow::Owned(subject.replace('.', sep.encode_utf8(&mut [0; 4])))
            }
            SubjectMapping::Separator(sep) => {
                tracing::debug!(
                    subject,
                    separator = %sep,
                    "nats: subject already contains the address separator; not mapped back"
                );
                Cow::Borrowed(subject)
            }
            SubjectMapping::Native => Cow::Borrowed(subject),
        }
    }

    /// `message` with its address and reply-to mapped to NATS subjects.
    pub(crate) fn outgoing(&self, mut message: OutgoingMessage) -> Result<OutgoingMessage> {
        if let SubjectMapping::Separator(_) = self {
            message.address = self.publish_subject(&message.address)?.into_owned();
            if let Some(r) = message.reply_to.take() {
                message.reply_to = Some(self.publish_subject(&r)?.into_owned());
            }
        } else {
            check_subject(&message.address, false)?;
        }
        Ok(message)
    }
}

/// An error about a mapped subject, reported with the address the application used.
fn as_address(e: Error, address: &str) -> Error {
    match e {
        Error::InvalidAddress { reason, .. } => Error::InvalidAddress {
            address: address.to_owned(),
            reason,
        },
        other => other,
    }
}

fn invalid(address: &str, reason: impl Into<Cow<'static, str>>) -> Error {
    Error::InvalidAddress {
        address: address.to_owned(),
        reason: reason.into(),
    }
}

/// Refuse text (part of `address`) that mapping `sep` → `.` would change the meaning of.
fn check_mappable(address: &str, text: &str, sep: char, subscribe: bool) -> Result<()> {
    if text.contains('.') {
        return Err(invalid(
            address,
            format!(
                "`.` separates NATS subject tokens; with address separator `{sep}` an address \
                 cannot contain `.`"
            ),
        ));
    }
    if !subscribe && text.contains(['*', '>']) {
        return Err(invalid(
            address,
            "`*` and `>` are NATS wildcards; a published address cannot contain them",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLASH: SubjectMapping = SubjectMapping::Separator('/');

    fn template(s: &str) -> Result<String> {
        SLASH.subscribe_subject(&Address::parse(s).unwrap())
    }

    #[test]
    fn slash_addresses_map_to_tokens_and_back() {
        let a = "smartylighting/streetlights/1/0/event/42/lighting/measured";
        let s = SLASH.publish_subject(a).unwrap();
        assert_eq!(
            s,
            "smartylighting.streetlights.1.0.event.42.lighting.measured"
        );
        assert_eq!(SLASH.address(&s), a);
        assert_eq!(
            template("smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured")
                .unwrap(),
            "smartylighting.streetlights.1.0.event.*.lighting.measured"
        );
        assert_eq!(template("{a}/x/{b}").unwrap(), "*.x.*");
        assert_eq!(template("events/>").unwrap(), "events.>");
        assert_eq!(template("a/*/b").unwrap(), "a.*.b");
        assert_eq!(SLASH.address("_INBOX.abc.1"), "_INBOX/abc/1");
        // Ambiguous: left as is.
        assert_eq!(SLASH.address("a/b.c"), "a/b.c");
        assert_eq!(SubjectMapping::separator('.'), SubjectMapping::Native);
    }

    #[test]
    fn addresses_that_would_change_meaning_are_refused() {
        for a in ["a/b.c", "a/*", "a/>", "a/b*", "", "a//b", "/a", "a b"] {
            assert!(
                matches!(SLASH.publish_subject(a), Err(Error::InvalidAddress { .. })),
                "{a:?}"
            );
        }
        for t in [
            "a.{id}/b",
            "a/x{id}/b",
            "a/{id}x",
            "a/b*/c",
            "a/>/b",
            "a/x>",
            "a//{id}",
        ] {
            assert!(
                matches!(template(t), Err(Error::InvalidAddress { .. })),
                "{t:?}"
            );
        }
        let err = SLASH.publish_subject("lights/1.5").unwrap_err().to_string();
        assert!(err.contains("lights/1.5") && err.contains('.'), "{err}");
        // Errors name the address, not the mapped subject.
        let err = SLASH.publish_subject("a//b").unwrap_err().to_string();
        assert!(err.contains("a//b"), "{err}");
        let err = template("a//{x}").unwrap_err().to_string();
        assert!(err.contains("a//{x}"), "{err}");
        assert!(SubjectMapping::Separator('*').validate().is_err());
        assert!(SubjectMapping::Separator(' ').validate().is_err());
        assert!(SLASH.validate().is_ok());
    }

    #[test]
    fn native_is_unchanged() {
        let n = SubjectMapping::Native;
        assert_eq!(n.publish_subject("a.b").unwrap(), "a.b");
        assert_eq!(n.address("a.b"), "a.b");
        assert_eq!(
            n.subscribe_subject(&Address::parse("a.{x}").unwrap())
                .unwrap(),
            "a.*"
        );
        let m = n
            .outgoing(OutgoingMessage::new("a.b", "x").reply_to("r.1"))
            .unwrap();
        assert_eq!(
            (m.address.as_str(), m.reply_to.as_deref()),
            ("a.b", Some("r.1"))
        );
        let m = SLASH
            .outgoing(OutgoingMessage::new("a/b", "x").reply_to("_INBOX/r/1"))
            .unwrap();
        assert_eq!(
            (m.address.as_str(), m.reply_to.as_deref()),
            ("a.b", Some("_INBOX.r.1"))
        );
    }
}
