//! Channel address templates such as `user/{userId}/signup`.
//!
//! An [`Address`] renders a concrete address from parameter values and matches a concrete
//! address back to its parameter values. Each broker maps a template to its own wildcard syntax
//! with [`Address::to_wildcard`].

use std::fmt;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Literal text.
    Literal(String),
    /// A `{name}` parameter.
    Param(String),
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// A `{` without its `}`.
    #[error("unclosed `{{` at byte {0}")]
    Unclosed(usize),
    /// `{}`.
    #[error("empty parameter name at byte {0}")]
    EmptyParam(usize),
    /// A `}` without `{`.
    #[error("unexpected `}}` at byte {0}")]
    UnexpectedClose(usize),
    /// Two parameters next to each other cannot be told apart when matching.
    #[error("parameters `{0}` and `{1}` are adjacent; put literal text between them")]
    AdjacentParams(String, String),
    /// A value was not supplied when rendering.
    #[error("missing value for parameter `{0}`")]
    MissingParam(String),
    /// A parameter value that is empty or contains a reserved character.
    #[error("invalid value {value:?} for parameter `{name}`: {reason}")]
    InvalidValue {
        /// Parameter name.
        name: String,
        /// The value.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
}

/// Characters a parameter value may never contain: address separators and wildcards of the
/// supported brokers. Allowing them would let a value change which channel is addressed.
pub const RESERVED_VALUE_CHARS: &[char] = &['/', '.', '*', '>', '#', '+', '{', '}', ' '];

/// A parsed channel address template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    raw: String,
    segments: Vec<Segment>,
}

impl Address {
    /// Parse a template such as `user/{userId}/signup`.
    pub fn parse(template: &str) -> Result<Self, AddressError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut chars = template.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => {
                    let start = i + 1;
                    let mut end = None;
                    for (j, d) in chars.by_ref() {
                        if d == '}' {
                            end = Some(j);
                            break;
                        }
                        if d == '{' {
                            return Err(AddressError::Unclosed(i));
                        }
                    }
                    let end = end.ok_or(AddressError::Unclosed(i))?;
                    let name = &template[start..end];
                    if name.is_empty() {
                        return Err(AddressError::EmptyParam(i));
                    }
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    if let Some(Segment::Param(prev)) = segments.last() {
                        return Err(AddressError::AdjacentParams(prev.clone(), name.to_owned()));
                    }
                    segments.push(Segment::Param(name.to_owned()));
                }
                '}' => return Err(AddressError::UnexpectedClose(i)),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Address {
            raw: template.to_owned(),
            segments,
        })
    }

    /// The template text as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Parameter names in order of appearance.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// True when the template has no parameters.
    pub fn is_concrete(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Render a concrete address, looking each parameter up with `value`.
    ///
    /// Values must be non-empty and must not contain [`RESERVED_VALUE_CHARS`].
    pub fn render<'a>(
        &self,
        mut value: impl FnMut(&str) -> Option<&'a str>,
    ) -> Result<String, AddressError> {
        let mut out = String::with_capacity(self.raw.len() + 16);
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(p) => {
                    let v = value(p).ok_or_else(|| AddressError::MissingParam(p.clone()))?;
                    check_value(p, v)?;
                    out.push_str(v);
                }
            }
        }
        Ok(out)
    }

    /// Render from `(name, value)` pairs.
    pub fn render_with(&self, params: &[(&str, &str)]) -> Result<String, AddressError> {
        self.render(|name| params.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    /// Match a concrete address; on success push the byte range of each parameter value (in
    /// template order) into `out`, which is cleared first. Does not allocate when `out` has
    /// capacity.
    pub fn match_into(&self, address: &str, out: &mut Vec<std::ops::Range<usize>>) -> bool {
        out.clear();
        let mut pos = 0;
        let mut iter = self.segments.iter().peekable();
        while let Some(seg) = iter.next() {
            match seg {
                Segment::Literal(l) => {
                    if !address[pos..].starts_with(l.as_str()) {
                        return false;
                    }
                    pos += l.len();
                }
                Segment::Param(_) => {
                    let rest = &address[pos..];
                    let len = match iter.peek() {
                        Some(Segment::Literal(next)) => match rest.find(next.as_str()) {
                            Some(n) => n,
                            None => return false,
                        },
                        _ => rest.len(),
                    };
                    let value = &rest[..len];
                    if value.is_empty() || value.contains(RESERVED_VALUE_CHARS) {
                        return false;
                    }
                    out.push(pos..pos + len);
                    pos += len;
                }
            }
        }
        pos == address.len()
    }

    /// True when `address` is an instance of this template.
    pub fn matches(&self, address: &str) -> bool {
        if self.is_concrete() {
            return self.raw == address;
        }
        let mut ranges = Vec::new();
        self.match_into(address, &mut ranges)
    }

    /// Match a concrete address and return its parameter values.
    pub fn captures(&self, address: &str) -> Option<Params> {
        let mut ranges = Vec::new();
        if !self.match_into(address, &mut ranges) {
            return None;
        }
        Some(Params {
            values: self
                .params()
                .zip(ranges)
                .map(|(n, r)| (n.to_owned(), address[r].to_owned()))
                .collect(),
        })
    }

    /// Match a concrete address into `params`, reusing its allocations (and `ranges` as
    /// scratch space). On no match `params` is left empty and `false` is returned.
    pub fn capture_into(
        &self,
        address: &str,
        ranges: &mut Vec<std::ops::Range<usize>>,
        params: &mut Params,
    ) -> bool {
        if self.is_concrete() {
            params.values.clear();
            return self.raw == address;
        }
        if !self.match_into(address, ranges) {
            params.values.clear();
            return false;
        }
        let n = ranges.len();
        for (i, (name, r)) in self.params().zip(ranges.iter()).enumerate() {
            let value = &address[r.clone()];
            match params.values.get_mut(i) {
                Some((k, v)) => {
                    if k != name {
                        k.clear();
                        k.push_str(name);
                    }
                    v.clear();
                    v.push_str(value);
                }
                None => params.values.push((name.to_owned(), value.to_owned())),
            }
        }
        params.values.truncate(n);
        true
    }

    /// The template with every parameter replaced by `wildcard(name)`: `{userId}` → `*` for
    /// NATS, `+` for MQTT.
    pub fn to_wildcard(&self, mut wildcard: impl FnMut(&str) -> String) -> String {
        let mut out = String::with_capacity(self.raw.len());
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(p) => out.push_str(&wildcard(p)),
            }
        }
        out
    }
}

fn check_value(name: &str, value: &str) -> Result<(), AddressError> {
    let reason = if value.is_empty() {
        "empty"
    } else if value.contains(RESERVED_VALUE_CHARS) {
        "contains a reserved character (one of / . * > # + { } or space)"
    } else {
        return Ok(());
    };
    Err(AddressError::InvalidValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    })
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// Parameter values captured from a concrete address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: Vec<(String, String)>,
}

impl Params {
    /// Forget every value (keeping the allocation).
    pub(crate) fn clear(&mut self) {
        self.values.clear();
    }

    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Iterate `(name, value)` pairs in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_render_match() {
        let a = Address::parse("user/{userId}/signup").unwrap();
        assert_eq!(a.params().collect::<Vec<_>>(), ["userId"]);
        assert_eq!(
            a.render_with(&[("userId", "42")]).unwrap(),
            "user/42/signup"
        );
        let p = a.captures("user/42/signup").unwrap();
        assert_eq!(p.get("userId"), Some("42"));
        assert!(a.captures("user/42/signup/x").is_none());
        assert!(a.captures("user//signup").is_none());
        assert!(a.captures("user/4/2/signup").is_none());
        assert_eq!(a.to_wildcard(|_| "+".into()), "user/+/signup");
    }

    #[test]
    fn params_inside_segments_and_at_end() {
        let a = Address::parse(
            "smartylighting.streetlights.1.0.event.{streetlightId}.lighting.measured",
        )
        .unwrap();
        let p = a
            .captures("smartylighting.streetlights.1.0.event.abc.lighting.measured")
            .unwrap();
        assert_eq!(p.get("streetlightId"), Some("abc"));
        let b = Address::parse("orders-{region}").unwrap();
        assert_eq!(b.captures("orders-eu").unwrap().get("region"), Some("eu"));
        assert!(!b.matches("orders-"));
    }

    #[test]
    fn rejects_bad_templates_and_values() {
        assert_eq!(Address::parse("a/{b"), Err(AddressError::Unclosed(2)));
        assert_eq!(Address::parse("a/{}"), Err(AddressError::EmptyParam(2)));
        assert_eq!(Address::parse("a}"), Err(AddressError::UnexpectedClose(1)));
        assert!(matches!(
            Address::parse("{a}{b}"),
            Err(AddressError::AdjacentParams(..))
        ));
        let a = Address::parse("user/{id}").unwrap();
        assert!(matches!(
            a.render_with(&[("id", "a/b")]),
            Err(AddressError::InvalidValue { .. })
        ));
        assert_eq!(
            a.render_with(&[]),
            Err(AddressError::MissingParam("id".into()))
        );
    }

    #[test]
    fn capture_into_reuses_params() {
        let a = Address::parse("u/{id}/o/{order}").unwrap();
        let mut ranges = Vec::new();
        let mut p = Params::default();
        assert!(a.capture_into("u/1/o/9", &mut ranges, &mut p));
        assert_eq!(p, a.captures("u/1/o/9").unwrap());
        assert!(a.capture_into("u/22/o/x", &mut ranges, &mut p));
        assert_eq!(
            (p.get("id"), p.get("order"), p.len()),
            (Some("22"), Some("x"), 2)
        );
        assert!(!a.capture_into("nope", &mut ranges, &mut p));
        assert!(p.is_empty());
    }

    #[test]
    fn match_into_does_not_allocate_with_capacity() {
        let a = Address::parse("a.{x}.b.{y}").unwrap();
        let mut out = Vec::with_capacity(4);
        assert!(a.match_into("a.1.b.2", &mut out));
        assert_eq!(out, vec![2..3, 6..7]);
    }
}
