//! One function per JSON Schema keyword, called by generated `validate` bodies. Each checks,
//! and on failure records a violation with the sentence users read in logs and dead letters.

use std::fmt;
use std::sync::OnceLock;

use super::{Path, Violations};

/// A value numeric keywords check: every Rust integer and float type, and a
/// `serde_json::Value` (checked when it is a number; other JSON values pass, as JSON Schema
/// says of numeric keywords).
pub trait Numeric: fmt::Display {
    /// The value as `f64` (integers beyond 2^53 round: bounds that close are not meaningful);
    /// `None` when it is not a number.
    fn to_f64(&self) -> Option<f64>;
    /// The value as `i128`, when it is an integer.
    fn to_i128(&self) -> Option<i128>;
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            #[inline]
            fn to_f64(&self) -> Option<f64> { Some(*self as f64) }
            #[inline]
            fn to_i128(&self) -> Option<i128> { Some(*self as i128) }
        }
    )*};
}
ints!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Numeric for f64 {
    #[inline]
    fn to_f64(&self) -> Option<f64> {
        Some(*self)
    }
    #[inline]
    fn to_i128(&self) -> Option<i128> {
        None
    }
}

impl Numeric for f32 {
    #[inline]
    fn to_f64(&self) -> Option<f64> {
        Some(f64::from(*self))
    }
    #[inline]
    fn to_i128(&self) -> Option<i128> {
        None
    }
}

impl Numeric for serde_json::Value {
    #[inline]
    fn to_f64(&self) -> Option<f64> {
        self.as_f64()
    }
    #[inline]
    fn to_i128(&self) -> Option<i128> {
        self.as_i64()
            .map(i128::from)
            .or_else(|| self.as_u64().map(i128::from))
    }
}

/// A value string keywords check: `String`, `str`, and a `serde_json::Value` (checked when
/// it is a string).
pub trait Text {
    /// The string, or `None` when the value is not one.
    fn text(&self) -> Option<&str>;
}

impl Text for String {
    #[inline]
    fn text(&self) -> Option<&str> {
        Some(self)
    }
}

impl Text for str {
    #[inline]
    fn text(&self) -> Option<&str> {
        Some(self)
    }
}

impl Text for serde_json::Value {
    #[inline]
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
}

/// A value array keywords check: `Vec`, slices, and a `serde_json::Value` (its items when
/// it is an array, else none).
pub trait Items {
    /// The item type.
    type Item;
    /// The items.
    fn items(&self) -> &[Self::Item];
}

impl<T> Items for Vec<T> {
    type Item = T;
    #[inline]
    fn items(&self) -> &[T] {
        self
    }
}

impl<T> Items for [T] {
    type Item = T;
    #[inline]
    fn items(&self) -> &[T] {
        self
    }
}

impl Items for serde_json::Value {
    type Item = serde_json::Value;
    #[inline]
    fn items(&self) -> &[serde_json::Value] {
        self.as_array().map_or(&[], Vec::as_slice)
    }
}

/// The items of an array value (none when a JSON value is not an array).
#[inline]
pub fn items<T: Items + ?Sized>(v: &T) -> &[T::Item] {
    v.items()
}

/// A value object keywords check: maps from `String`, and a `serde_json::Value` (its
/// properties when it is an object, else none).
pub trait Entries {
    /// The type of the property values.
    type Value;
    /// The properties, in order.
    fn entries(&self) -> impl Iterator<Item = (&str, &Self::Value)>;
    /// How many properties.
    fn count(&self) -> usize;
}

impl<V> Entries for std::collections::BTreeMap<String, V> {
    type Value = V;
    #[inline]
    fn entries(&self) -> impl Iterator<Item = (&str, &V)> {
        self.iter().map(|(k, v)| (k.as_str(), v))
    }
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
}

impl Entries for serde_json::Map<String, serde_json::Value> {
    type Value = serde_json::Value;
    #[inline]
    fn entries(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.iter().map(|(k, v)| (k.as_str(), v))
    }
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
}

impl Entries for serde_json::Value {
    type Value = serde_json::Value;
    #[inline]
    fn entries(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.as_object()
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
    }
    #[inline]
    fn count(&self) -> usize {
        self.as_object().map_or(0, serde_json::Map::len)
    }
}

/// How many properties an object value has (0 when a JSON value is not an object).
#[inline]
pub fn count<T: Entries + ?Sized>(v: &T) -> usize {
    v.count()
}

/// The properties of an object value (none when a JSON value is not an object).
#[inline]
pub fn entries<T: Entries + ?Sized>(v: &T) -> impl Iterator<Item = (&str, &T::Value)> {
    v.entries()
}

/// A value that may be `null`: `Option`, and a `serde_json::Value`.
pub trait Nullable {
    /// What is there when it is not `null`.
    type Inner: ?Sized;
    /// The value, or `None` when it is `null` (or absent).
    fn present(&self) -> Option<&Self::Inner>;
}

impl<T> Nullable for Option<T> {
    type Inner = T;
    #[inline]
    fn present(&self) -> Option<&T> {
        self.as_ref()
    }
}

impl Nullable for serde_json::Value {
    type Inner = serde_json::Value;
    #[inline]
    fn present(&self) -> Option<&serde_json::Value> {
        (!self.is_null()).then_some(self)
    }
}

/// The value when it is not `null`.
#[inline]
pub fn present<T: Nullable + ?Sized>(v: &T) -> Option<&T::Inner> {
    v.present()
}

/// A value `const: true/false` checks: `bool` and a `serde_json::Value`.
pub trait Boolean {
    /// The boolean, or `None` when the value is not one.
    fn boolean(&self) -> Option<bool>;
}

impl Boolean for bool {
    #[inline]
    fn boolean(&self) -> Option<bool> {
        Some(*self)
    }
}

impl Boolean for serde_json::Value {
    #[inline]
    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }
}

/// Whether `v` fails a bound: NaN always does, else `outside` says.
#[inline]
fn fails<N: Numeric + ?Sized>(v: &N, outside: impl Fn(f64) -> bool) -> bool {
    v.to_f64().is_some_and(|x| x.is_nan() || outside(x))
}

/// `minimum`.
#[inline]
pub fn minimum<N: Numeric + ?Sized>(path: &Path<'_>, v: &N, bound: f64, errs: &mut Violations) {
    if fails(v, |x| x < bound) {
        errs.push(path, format_args!("must be >= {bound}, got {v}"));
    }
}

/// `maximum`.
#[inline]
pub fn maximum<N: Numeric + ?Sized>(path: &Path<'_>, v: &N, bound: f64, errs: &mut Violations) {
    if fails(v, |x| x > bound) {
        errs.push(path, format_args!("must be <= {bound}, got {v}"));
    }
}

/// `exclusiveMinimum`.
#[inline]
pub fn exclusive_minimum<N: Numeric + ?Sized>(
    path: &Path<'_>,
    v: &N,
    bound: f64,
    errs: &mut Violations,
) {
    if fails(v, |x| x <= bound) {
        errs.push(path, format_args!("must be > {bound}, got {v}"));
    }
}

/// `exclusiveMaximum`.
#[inline]
pub fn exclusive_maximum<N: Numeric + ?Sized>(
    path: &Path<'_>,
    v: &N,
    bound: f64,
    errs: &mut Violations,
) {
    if fails(v, |x| x >= bound) {
        errs.push(path, format_args!("must be < {bound}, got {v}"));
    }
}

/// `multipleOf` (exact for integers; within a relative 1e-9 for floats).
#[inline]
pub fn multiple_of<N: Numeric + ?Sized>(
    path: &Path<'_>,
    v: &N,
    divisor: f64,
    errs: &mut Violations,
) {
    let Some(x) = v.to_f64() else {
        return;
    };
    let ok = match (v.to_i128(), divisor.fract() == 0.0 && divisor.abs() < 1e30) {
        (Some(i), true) => {
            let d = divisor as i128;
            d == 0 || i % d == 0
        }
        _ => {
            let q = x / divisor;
            q.is_finite() && (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
        }
    };
    if !ok {
        errs.push(
            path,
            format_args!("must be a multiple of {divisor}, got {v}"),
        );
    }
}

/// The length of a string as JSON Schema counts it (Unicode code points), counted only when
/// the byte length does not already decide.
#[inline]
fn chars_at_least(s: &str, n: usize) -> bool {
    s.len() >= n && (s.len() >= n.saturating_mul(4) || s.chars().count() >= n)
}

/// `minLength` (in characters).
#[inline]
pub fn min_length<S: Text + ?Sized>(path: &Path<'_>, v: &S, min: usize, errs: &mut Violations) {
    let Some(v) = v.text() else {
        return;
    };
    if !chars_at_least(v, min) {
        errs.push(
            path,
            format_args!(
                "must be at least {min} characters long, got {}",
                v.chars().count()
            ),
        );
    }
}

/// `maxLength` (in characters).
#[inline]
pub fn max_length<S: Text + ?Sized>(path: &Path<'_>, v: &S, max: usize, errs: &mut Violations) {
    let Some(v) = v.text() else {
        return;
    };
    if v.len() > max && v.chars().count() > max {
        errs.push(
            path,
            format_args!(
                "must be at most {max} characters long, got {}",
                v.chars().count()
            ),
        );
    }
}

/// A `pattern`: compiled to code by the generator when it is an anchored sequence of ASCII
/// character classes (`^[a-z0-9-]+$`, `^[0-9]{4}$`, `^[A-Z]{2}-\d{3,5}$`: every class but the
/// last of a fixed length), else matched with the `regex` crate, compiled on first use and kept
/// (generated code declares one `static` per pattern).
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    matcher: Option<fn(&str) -> bool>,
    compiled: OnceLock<Option<regex::Regex>>,
}

impl Pattern {
    /// The pattern `source` (an ECMA-262 regular expression, as JSON Schema says), not yet
    /// compiled.
    pub const fn new(source: &'static str) -> Self {
        Pattern {
            source,
            matcher: None,
            compiled: OnceLock::new(),
        }
    }

    /// The pattern `source`, matched by `matcher` (which must say exactly what `source` does).
    pub const fn compiled(source: &'static str, matcher: fn(&str) -> bool) -> Self {
        Pattern {
            source,
            matcher: Some(matcher),
            compiled: OnceLock::new(),
        }
    }

    /// The source text.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Whether `s` contains a match; `None` when the pattern does not compile (the generator
    /// checks every pattern it emits, so this is for hand-written ones).
    pub fn is_match(&self, s: &str) -> Option<bool> {
        if let Some(matcher) = self.matcher {
            return Some(matcher(s));
        }
        self.compiled
            .get_or_init(|| regex::Regex::new(self.source).ok())
            .as_ref()
            .map(|re| re.is_match(s))
    }
}

/// `pattern` (not anchored: a match anywhere, as JSON Schema says).
#[inline]
pub fn pattern<S: Text + ?Sized>(path: &Path<'_>, v: &S, pattern: &Pattern, errs: &mut Violations) {
    let Some(v) = v.text() else {
        return;
    };
    match pattern.is_match(v) {
        Some(true) => {}
        Some(false) => errs.push(
            path,
            format_args!("must match the pattern `{}`, got {v:?}", pattern.source),
        ),
        None => errs.push(
            path,
            format_args!(
                "cannot be checked: the pattern `{}` is not a supported regular expression",
                pattern.source
            ),
        ),
    }
}

/// `format` (the cheap ones: `date-time`, `date`, `time`, `email`, `uuid`, `uri`, `ipv4`,
/// `ipv6`; others are annotations, as JSON Schema allows).
#[inline]
pub fn format<S: Text + ?Sized>(path: &Path<'_>, v: &S, format: &str, errs: &mut Violations) {
    let Some(v) = v.text() else {
        return;
    };
    let (ok, what) = match format {
        "date-time" => (super::is_date_time(v), "an RFC 3339 date-time"),
        "date" => (super::is_date(v), "an RFC 3339 full-date"),
        "time" => (super::is_time(v), "an RFC 3339 full-time"),
        "email" => (super::is_email(v), "an email address"),
        "uuid" => (super::is_uuid(v), "a UUID"),
        "uri" => (super::is_uri(v), "an absolute URI"),
        "ipv4" => (super::is_ipv4(v), "an IPv4 address"),
        "ipv6" => (super::is_ipv6(v), "an IPv6 address"),
        _ => (true, ""),
    };
    if !ok {
        errs.push(path, format_args!("must be {what}, got {v:?}"));
    }
}

/// `minItems`.
#[inline]
pub fn min_items<T: Items + ?Sized>(path: &Path<'_>, v: &T, min: usize, errs: &mut Violations) {
    let len = v.items().len();
    if len < min {
        errs.push(
            path,
            format_args!("must have at least {min} items, got {len}"),
        );
    }
}

/// `maxItems`.
#[inline]
pub fn max_items<T: Items + ?Sized>(path: &Path<'_>, v: &T, max: usize, errs: &mut Violations) {
    let len = v.items().len();
    if len > max {
        errs.push(
            path,
            format_args!("must have at most {max} items, got {len}"),
        );
    }
}

/// `uniqueItems: true` (pairwise comparison: no hashing, no allocation).
#[inline]
pub fn unique_items<T: Items + ?Sized>(path: &Path<'_>, v: &T, errs: &mut Violations)
where
    T::Item: PartialEq,
{
    let items = v.items();
    for (i, a) in items.iter().enumerate() {
        if let Some(j) = items[i + 1..].iter().position(|b| a == b) {
            errs.push(
                path,
                format_args!(
                    "must have unique items, but items {i} and {} are equal",
                    i + 1 + j
                ),
            );
            return;
        }
    }
}

/// `minProperties`.
#[inline]
pub fn min_properties(path: &Path<'_>, len: usize, min: usize, errs: &mut Violations) {
    if len < min {
        errs.push(
            path,
            format_args!("must have at least {min} properties, got {len}"),
        );
    }
}

/// `maxProperties`.
#[inline]
pub fn max_properties(path: &Path<'_>, len: usize, max: usize, errs: &mut Violations) {
    if len > max {
        errs.push(
            path,
            format_args!("must have at most {max} properties, got {len}"),
        );
    }
}

/// `enum` / `const` of strings on a `String` value.
#[inline]
pub fn one_of_str<S: Text + ?Sized>(
    path: &Path<'_>,
    v: &S,
    allowed: &[&str],
    errs: &mut Violations,
) {
    let Some(v) = v.text() else {
        return;
    };
    if !allowed.contains(&v) {
        errs.push(path, OneOf(allowed, &v));
    }
}

/// `enum` / `const` of numbers on a numeric value.
#[inline]
pub fn one_of_number<N: Numeric + ?Sized>(
    path: &Path<'_>,
    v: &N,
    allowed: &[f64],
    errs: &mut Violations,
) {
    let Some(x) = v.to_f64() else {
        return;
    };
    if !allowed.contains(&x) {
        errs.push(path, OneOf(allowed, &format_args!("{v}")));
    }
}

/// `const` of a boolean.
#[inline]
pub fn const_bool<B: Boolean + ?Sized>(
    path: &Path<'_>,
    v: &B,
    expected: bool,
    errs: &mut Violations,
) {
    let Some(v) = v.boolean() else {
        return;
    };
    if v != expected {
        errs.push(path, format_args!("must be {expected}, got {v}"));
    }
}

/// `must be one of [..], got ..` (or `must be .., got ..` for a single value).
struct OneOf<'a, A, V>(&'a [A], &'a V);

impl<A: fmt::Debug, V: fmt::Debug> fmt::Display for OneOf<'_, A, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [single] => write!(f, "must be {single:?}, got {:?}", self.1),
            all => write!(f, "must be one of {all:?}, got {:?}", self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_and_regex_patterns_agree() {
        static COMPILED: Pattern = Pattern::compiled("^[a-z0-9-]+$", |s: &str| {
            let b = s.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|&c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        });
        static REGEX: Pattern = Pattern::new("^[a-z0-9-]+$");
        static BAD: Pattern = Pattern::new("(unclosed");
        for s in ["sensor-42", "", "Sensor", "é", "a b", "---"] {
            assert_eq!(COMPILED.is_match(s), REGEX.is_match(s), "{s:?}");
        }
        assert_eq!(BAD.is_match("x"), None);
        let mut errs = Violations::new();
        pattern(&Path::Root, "x", &BAD, &mut errs);
        assert!(
            errs.to_string()
                .contains("not a supported regular expression")
        );
    }
}
