//! One function per JSON Schema keyword, called by generated `validate` bodies. Each checks,
//! and on failure records a violation with the sentence users read in logs and dead letters.

use std::fmt;
use std::sync::OnceLock;

use super::{Path, Violations};

/// A number a numeric keyword can check (every Rust integer and float type).
pub trait Number: Copy + fmt::Display + fmt::Debug {
    /// The value as `f64` (integers beyond 2^53 round: bounds that close are not meaningful).
    fn to_f64(self) -> f64;
    /// The value as `i128`, when it is an integer.
    fn to_i128(self) -> Option<i128>;
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl Number for $t {
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline]
            fn to_i128(self) -> Option<i128> { Some(self as i128) }
        }
    )*};
}
ints!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Number for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn to_i128(self) -> Option<i128> {
        None
    }
}

impl Number for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn to_i128(self) -> Option<i128> {
        None
    }
}

/// Whether `v` fails a bound: NaN always does, else `outside` says.
#[inline]
fn fails<N: Number>(v: N, outside: impl Fn(f64) -> bool) -> bool {
    let x = v.to_f64();
    x.is_nan() || outside(x)
}

/// `minimum`.
#[inline]
pub fn minimum<N: Number>(path: &Path<'_>, v: N, bound: f64, errs: &mut Violations) {
    if fails(v, |x| x < bound) {
        errs.push(path, format_args!("must be >= {bound}, got {v}"));
    }
}

/// `maximum`.
#[inline]
pub fn maximum<N: Number>(path: &Path<'_>, v: N, bound: f64, errs: &mut Violations) {
    if fails(v, |x| x > bound) {
        errs.push(path, format_args!("must be <= {bound}, got {v}"));
    }
}

/// `exclusiveMinimum`.
#[inline]
pub fn exclusive_minimum<N: Number>(path: &Path<'_>, v: N, bound: f64, errs: &mut Violations) {
    if fails(v, |x| x <= bound) {
        errs.push(path, format_args!("must be > {bound}, got {v}"));
    }
}

/// `exclusiveMaximum`.
#[inline]
pub fn exclusive_maximum<N: Number>(path: &Path<'_>, v: N, bound: f64, errs: &mut Violations) {
    if fails(v, |x| x >= bound) {
        errs.push(path, format_args!("must be < {bound}, got {v}"));
    }
}

/// `multipleOf` (exact for integers; within a relative 1e-9 for floats).
#[inline]
pub fn multiple_of<N: Number>(path: &Path<'_>, v: N, divisor: f64, errs: &mut Violations) {
    let ok = match (v.to_i128(), divisor.fract() == 0.0 && divisor.abs() < 1e30) {
        (Some(i), true) => {
            let d = divisor as i128;
            d == 0 || i % d == 0
        }
        _ => {
            let q = v.to_f64() / divisor;
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
pub fn min_length(path: &Path<'_>, v: &str, min: usize, errs: &mut Violations) {
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
pub fn max_length(path: &Path<'_>, v: &str, max: usize, errs: &mut Violations) {
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

/// A `pattern`, compiled on first use and kept (generated code declares one `static` per
/// pattern).
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    compiled: OnceLock<Option<regex_lite::Regex>>,
}

impl Pattern {
    /// The pattern `source` (an ECMA-262 regular expression, as JSON Schema says), not yet
    /// compiled.
    pub const fn new(source: &'static str) -> Self {
        Pattern {
            source,
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
        self.compiled
            .get_or_init(|| regex_lite::Regex::new(self.source).ok())
            .as_ref()
            .map(|re| re.is_match(s))
    }
}

/// `pattern` (not anchored: a match anywhere, as JSON Schema says).
#[inline]
pub fn pattern(path: &Path<'_>, v: &str, pattern: &Pattern, errs: &mut Violations) {
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
pub fn format(path: &Path<'_>, v: &str, format: &str, errs: &mut Violations) {
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
pub fn min_items(path: &Path<'_>, len: usize, min: usize, errs: &mut Violations) {
    if len < min {
        errs.push(
            path,
            format_args!("must have at least {min} items, got {len}"),
        );
    }
}

/// `maxItems`.
#[inline]
pub fn max_items(path: &Path<'_>, len: usize, max: usize, errs: &mut Violations) {
    if len > max {
        errs.push(
            path,
            format_args!("must have at most {max} items, got {len}"),
        );
    }
}

/// `uniqueItems: true` (pairwise comparison: no hashing, no allocation).
#[inline]
pub fn unique_items<T: PartialEq>(path: &Path<'_>, items: &[T], errs: &mut Violations) {
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
pub fn one_of_str(path: &Path<'_>, v: &str, allowed: &[&str], errs: &mut Violations) {
    if !allowed.contains(&v) {
        errs.push(path, OneOf(allowed, &v));
    }
}

/// `enum` / `const` of numbers on a numeric value.
#[inline]
pub fn one_of_number<N: Number>(path: &Path<'_>, v: N, allowed: &[f64], errs: &mut Violations) {
    let x = v.to_f64();
    if !allowed.contains(&x) {
        errs.push(path, OneOf(allowed, &v));
    }
}

/// `const` of a boolean.
#[inline]
pub fn const_bool(path: &Path<'_>, v: bool, expected: bool, errs: &mut Violations) {
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
