//! Schema validation of messages: what JSON Schema says about a value, compiled into code.
//!
//! `ruststream-build` implements [`Validate`] for every type it generates, with one `validate`
//! per type checking the keywords of its schema (`minimum`, `maxLength`, `pattern`, `format`,
//! `minItems`, …) and calling `validate` on the values inside it. Generated `register`
//! decodes received messages with [`decode`] (decode, then validate: an invalid message is
//! settled by the route's [`DecodePolicy`](crate::router::DecodePolicy) and never reaches the
//! handler) and generated publishers refuse an invalid message with [`ensure`] before it is
//! encoded.
//!
//! Violations name the value with a JSON pointer and say what is wrong in a sentence:
//!
//! ```
//! use ruststream::validate::{Path, Validate, Violations};
//!
//! struct Payment { amount: i64 }
//!
//! impl Validate for Payment {
//!     fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
//!         let path = &path.field("amount");
//!         if self.amount <= 0 {
//!             errs.push(path, format_args!("must be > 0, got {}", self.amount));
//!         }
//!     }
//! }
//!
//! let err = ruststream::validate::check(&Payment { amount: -3 }).unwrap_err();
//! assert_eq!(err.to_string(), "/amount: must be > 0, got -3");
//! assert!(ruststream::validate::check(&Payment { amount: 3 }).is_ok());
//! ```
//!
//! The valid path allocates nothing: a [`Path`] is a chain of borrowed segments on the stack,
//! rendered to a pointer only when a violation is recorded, and [`Violations`] allocates on its
//! first violation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::DeserializeOwned;

/// A value that can check itself against its schema.
pub trait Validate {
    /// Record every way `self` (found at `path`) violates its schema in `errs`.
    fn validate(&self, path: &Path<'_>, errs: &mut Violations);
}

/// Where a value is, as a chain of segments from the message root (borrowed, on the stack).
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The root of the message part (payload, headers or parameters).
    Root,
    /// A property of the value at the parent path.
    Field(&'a Path<'a>, &'a str),
    /// An item of the array at the parent path.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The property `name` of the value here.
    #[inline]
    pub fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The item `index` of the array here.
    #[inline]
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// The JSON pointer (RFC 6901) of this path: `""` for the root, else `/a/0/b`.
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        self.write_pointer(&mut out);
        out
    }

    fn write_pointer(&self, out: &mut String) {
        match *self {
            Path::Root => {}
            Path::Field(parent, name) => {
                parent.write_pointer(out);
                out.push('/');
                for c in name.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Path::Index(parent, index) => {
                parent.write_pointer(out);
                out.push('/');
                out.push_str(itoa::Buffer::new().format(index));
            }
        }
    }
}

/// One way a value violates its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer of the value (`""` for the root).
    pub pointer: String,
    /// What is wrong, as a sentence fragment (`must be > 0, got -3`).
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// The violations found in a value: at most [`Violations::LIMIT`] are kept (the rest are
/// counted), so a hostile message cannot make the report arbitrarily large.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations {
    list: Vec<Violation>,
    more: usize,
}

impl Violations {
    /// How many violations are kept.
    pub const LIMIT: usize = 32;

    /// None yet (allocates nothing).
    pub const fn new() -> Self {
        Violations {
            list: Vec::new(),
            more: 0,
        }
    }

    /// Record that the value at `path` violates its schema: `message` says how.
    #[cold]
    pub fn push(&mut self, path: &Path<'_>, message: impl fmt::Display) {
        if self.list.len() >= Self::LIMIT {
            self.more += 1;
            return;
        }
        self.list.push(Violation {
            pointer: path.pointer(),
            message: message.to_string(),
        });
    }

    /// No violation was recorded.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many violations were found (kept or not).
    pub fn len(&self) -> usize {
        self.list.len() + self.more
    }

    /// The violations kept, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.list.iter()
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Validate `value` from the root.
///
/// # Errors
/// Every violation found (see [`Violations`]).
pub fn check<T: Validate + ?Sized>(value: &T) -> Result<(), Violations> {
    let mut errs = Violations::new();
    value.validate(&Path::Root, &mut errs);
    errs.into_result()
}

/// Validate `value`, a message's `part` (`"payload"`, `"headers"`, `"parameters"`), as a
/// runtime result: what generated publishers call before sending.
///
/// # Errors
/// [`Error::Validation`](crate::Error::Validation) with every violation.
#[inline]
pub fn ensure<T: Validate + ?Sized>(part: &'static str, value: &T) -> crate::Result<()> {
    check(value).map_err(|violations| crate::Error::Validation { part, violations })
}

/// Decode a payload with the codec of `content_type`, then validate it: what generated routes
/// decode with.
///
/// # Errors
/// The codec's error, or [`Error::Validation`](crate::Error::Validation) with every violation.
#[inline]
pub fn decode<T: DeserializeOwned + Validate>(
    content_type: &str,
    payload: &[u8],
) -> crate::Result<T> {
    let value = crate::codec::decode::<T>(content_type, payload)?;
    ensure("payload", &value)?;
    Ok(value)
}

/// Implement [`Validate`] with nothing to check for each of the given types (what generated code
/// writes for a type whose schema has no constraint).
///
/// ```
/// struct Ping;
/// ruststream::validate::unconstrained!(Ping);
/// assert!(ruststream::validate::check(&Ping).is_ok());
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __validate_unconstrained {
    ($($t:ty),+ $(,)?) => {
        $(impl $crate::validate::Validate for $t {
            #[inline]
            fn validate(&self, _: &$crate::validate::Path<'_>, _: &mut $crate::validate::Violations) {}
        })+
    };
}

#[doc(inline)]
pub use crate::__validate_unconstrained as unconstrained;

macro_rules! nothing_to_check {
    ($($t:ty),* $(,)?) => {
        $(impl Validate for $t {
            #[inline]
            fn validate(&self, _: &Path<'_>, _: &mut Violations) {}
        })*
    };
}

nothing_to_check!(
    bool,
    i8,
    i16,
    i32,
    i64,
    i128,
    u8,
    u16,
    u32,
    u64,
    u128,
    f32,
    f64,
    (),
    str,
    String,
    serde_json::Value,
    serde_json::Map<String, serde_json::Value>,
);

impl<T: Validate + ?Sized> Validate for &T {
    #[inline]
    fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
        (**self).validate(path, errs);
    }
}

impl<T: Validate + ?Sized> Validate for Box<T> {
    #[inline]
    fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
        (**self).validate(path, errs);
    }
}

impl<T: Validate> Validate for Option<T> {
    #[inline]
    fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
        if let Some(v) = self {
            v.validate(path, errs);
        }
    }
}

impl<T: Validate> Validate for [T] {
    #[inline]
    fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
        for (i, v) in self.iter().enumerate() {
            v.validate(&path.index(i), errs);
        }
    }
}

impl<T: Validate> Validate for Vec<T> {
    #[inline]
    fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
        self.as_slice().validate(path, errs);
    }
}

impl<T: Validate> Validate for BTreeMap<String, T> {
    #[inline]
    fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
        for (k, v) in self {
            v.validate(&path.field(k), errs);
        }
    }
}

impl<T: Validate, S> Validate for HashMap<String, T, S> {
    #[inline]
    fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
        for (k, v) in self {
            v.validate(&path.field(k), errs);
        }
    }
}

macro_rules! tuples {
    ($(($($t:ident $i:tt),+)),* $(,)?) => {
        $(impl<$($t: Validate),+> Validate for ($($t,)+) {
            #[inline]
            fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
                $(self.$i.validate(&path.index($i), errs);)+
            }
        })*
    };
}

tuples!(
    (A 0),
    (A 0, B 1),
    (A 0, B 1, C 2),
    (A 0, B 1, C 2, D 3),
    (A 0, B 1, C 2, D 3, E 4),
    (A 0, B 1, C 2, D 3, E 4, F 5),
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6),
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7),
);

mod checks;
mod formats;

pub use formats::{is_date, is_date_time, is_email, is_ipv4, is_ipv6, is_time, is_uri, is_uuid};

/// The checks generated `validate` bodies call, one per JSON Schema keyword. Not a stable API:
/// only for code generated by `ruststream-build` of the same version.
#[doc(hidden)]
pub mod rt {
    pub use super::checks::*;
    pub use super::{Path, Validate, Violations};
}

#[cfg(test)]
mod tests {
    use super::rt::*;
    use super::*;

    struct Order {
        amount: f64,
        tags: Vec<String>,
        code: Option<String>,
    }

    impl Validate for Order {
        fn validate(&self, path: &Path<'_>, errs: &mut Violations) {
            static CODE: Pattern = Pattern::new("^[A-Z]{3}$");
            {
                let path = &path.field("amount");
                exclusive_minimum(path, &self.amount, 0.0, errs);
            }
            {
                let path = &path.field("tags");
                max_items(path, &self.tags, 2, errs);
                for (i, v) in self.tags.iter().enumerate() {
                    let path = &path.index(i);
                    min_length(path, v, 1, errs);
                }
            }
            if let Some(v) = &self.code {
                let path = &path.field("c/o~de");
                pattern(path, v, &CODE, errs);
            }
        }
    }

    #[test]
    fn pointers_and_sentences() {
        let order = Order {
            amount: -3.0,
            tags: vec!["a".into(), String::new(), "c".into()],
            code: Some("abc".into()),
        };
        let errs = check(&order).unwrap_err();
        assert_eq!(
            errs.to_string(),
            "/amount: must be > 0, got -3; /tags: must have at most 2 items, got 3; \
             /tags/1: must be at least 1 characters long, got 0; \
             /c~1o~0de: must match the pattern `^[A-Z]{3}$`, got \"abc\""
        );
        let ok = Order {
            amount: 1.5,
            tags: vec!["x".into()],
            code: Some("ABC".into()),
        };
        assert!(check(&ok).is_ok());
        let e = ensure("payload", &order).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("payload violates its schema: /amount"),
            "{e}"
        );
    }

    #[test]
    fn numbers_and_lengths() {
        let mut errs = Violations::new();
        let p = Path::Root;
        multiple_of(&p, &10i64, 5.0, &mut errs);
        multiple_of(&p, &0.3f64, 0.1, &mut errs);
        minimum(&p, &3u8, 3.0, &mut errs);
        maximum(&p, &3i32, 3.0, &mut errs);
        minimum(&p, &serde_json::json!("not a number"), 3.0, &mut errs);
        max_length(&p, "ééé", 3, &mut errs);
        min_length(&p, "ééé", 3, &mut errs);
        one_of_str(&p, "b", &["a", "b"], &mut errs);
        one_of_number(&p, &2i64, &[1.0, 2.0], &mut errs);
        unique_items(&p, &vec![1, 2, 3], &mut errs);
        assert!(errs.is_empty(), "{errs}");
        multiple_of(&p, &7i64, 5.0, &mut errs);
        minimum(&p, &f64::NAN, 0.0, &mut errs);
        max_length(&p, "éééé", 3, &mut errs);
        unique_items(&p, &serde_json::json!([1, 2, 1]), &mut errs);
        one_of_str(&p, "c", &["a"], &mut errs);
        assert_eq!(errs.len(), 5, "{errs}");
        assert!(
            errs.to_string().contains("/: must be \"a\", got \"c\""),
            "{errs}"
        );
    }

    #[test]
    fn violations_are_capped() {
        let mut errs = Violations::new();
        for _ in 0..(Violations::LIMIT + 5) {
            errs.push(&Path::Root, "bad");
        }
        assert_eq!(errs.len(), Violations::LIMIT + 5);
        assert_eq!(errs.iter().count(), Violations::LIMIT);
        assert!(errs.to_string().ends_with("; and 5 more"));
    }
}
