//! `impl Validate` for generated types, and `default` values.
//!
//! Every struct and enum the generator defines gets one `validate` whose body checks the
//! keywords of its schema in the order the properties are declared: one block per property
//! with checks, each binding `path` (the property's JSON pointer, built lazily) and `v` (a
//! reference to the value). Nested generated types are validated by their own `validate`;
//! arrays, maps and nullable values loop or unwrap through `rt` helpers that also accept
//! `serde_json::Value`, so a check never depends on the exact Rust type of an untyped value.

use std::cell::RefCell;

use super::*;

/// Deepest nesting of inline schemas (and aliases followed) checked inside one `validate`.
const MAX_CHECK_DEPTH: usize = 24;

/// Formats the runtime checks (others are annotations).
const CHECKED_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "email",
    "uuid",
    "uri",
    "ipv4",
    "ipv6",
];

/// Memo of [`TypeGen::alias_cycle`].
#[derive(Default)]
pub(super) struct AliasMemo(RefCell<HashMap<String, bool>>);

fn f64_lit(x: f64) -> TokenStream {
    let lit = proc_macro2::Literal::f64_unsuffixed(x);
    quote!(#lit)
}

fn usize_of(obj: &Map<String, Value>, key: &str) -> Option<proc_macro2::Literal> {
    obj.get(key)
        .and_then(Value::as_u64)
        .map(|n| proc_macro2::Literal::usize_unsuffixed(usize::try_from(n).unwrap_or(usize::MAX)))
}

/// Does this (non-ref) schema define a struct or an enum (the shapes `define_item` emits as
/// such)?
pub(super) fn defines_type(schema: &Value) -> bool {
    let Some(obj) = schema.as_object() else {
        return false;
    };
    if ref_target(schema).is_some() || strip_null(obj).is_some() {
        return false;
    }
    string_enum(obj).is_some()
        || obj.get("oneOf").is_some_and(Value::is_array)
        || obj.get("anyOf").is_some_and(Value::is_array)
        || obj.contains_key("properties")
        || obj
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|parts| parts.len() > 1)
        || (obj.get("additionalProperties") == Some(&Value::Bool(false)) && is_objectish(obj))
}

/// Every component a schema refers to, anywhere inside it (bounded).
fn all_refs(schema: &Value, out: &mut BTreeSet<String>, depth: usize) {
    if depth > MAX_CHECK_DEPTH {
        return;
    }
    match schema {
        Value::Object(obj) => {
            if let Some(target) = ref_target(schema) {
                out.insert(target.to_owned());
            }
            for v in obj.values() {
                all_refs(v, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for v in items {
                all_refs(v, out, depth + 1);
            }
        }
        _ => {}
    }
}

impl TypeGen<'_> {
    /// Whether the component `key`, an alias, reaches itself through aliases (the type
    /// generator makes such components newtypes, whose values the checks of an alias do not
    /// fit). Over-approximates: any reference counts.
    fn alias_cycle(&self, key: &str) -> bool {
        if let Some(&known) = self.alias_memo.0.borrow().get(key) {
            return known;
        }
        let mut seen = BTreeSet::new();
        let mut stack = vec![key.to_owned()];
        let mut cycle = false;
        while let Some(next) = stack.pop() {
            let Some(schema) = self.schemas.get(&next) else {
                continue;
            };
            let mut refs = BTreeSet::new();
            all_refs(schema, &mut refs, 0);
            for r in refs {
                if r == key {
                    cycle = true;
                }
                let alias = self.schemas.get(&r).is_some_and(|s| !defines_type(s));
                if alias && seen.insert(r.clone()) && seen.len() < 256 {
                    stack.push(r);
                }
            }
            if cycle {
                break;
            }
        }
        self.alias_memo.0.borrow_mut().insert(key.to_owned(), cycle);
        cycle
    }

    /// Whether the component `key` refers to itself, through any references (arrays and maps
    /// included): its `validate` may then call itself.
    fn reaches_itself(&self, key: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![key.to_owned()];
        while let Some(next) = stack.pop() {
            let Some(schema) = self.schemas.get(&next) else {
                continue;
            };
            let mut refs = BTreeSet::new();
            all_refs(schema, &mut refs, 0);
            for r in refs {
                if r == key {
                    return true;
                }
                if seen.len() < 256 && seen.insert(r.clone()) {
                    stack.push(r);
                }
            }
        }
        false
    }

    /// Whether a string schema's Rust type is not `String` (a chrono, `time` or uuid type).
    fn mapped_format(&self, obj: &Map<String, Value>) -> bool {
        let formats = &self.opts.formats;
        match obj.get("format").and_then(Value::as_str) {
            Some("date-time") => formats.chrono || formats.time,
            Some("date" | "time") => formats.chrono,
            Some("uuid") => formats.uuid,
            _ => false,
        }
    }

    /// Statements checking `v` (a reference to a value of `schema`'s type) at `path` (a
    /// `&Path`), or nothing when the schema says nothing checkable.
    pub(super) fn value_checks(&self, schema: &Value, depth: usize) -> TokenStream {
        if !self.opts.validate || depth > MAX_CHECK_DEPTH {
            return TokenStream::new();
        }
        if let Some(target) = ref_target(schema) {
            if self.opts.replace.contains_key(target) {
                return TokenStream::new();
            }
            let Some(resolved) = self.schemas.get(target) else {
                return TokenStream::new();
            };
            if resolved.as_object().and_then(string_enum).is_some() {
                // A Rust enum: serde already refused any other value.
                return TokenStream::new();
            }
            if defines_type(resolved) {
                return quote!(rt::Validate::validate(v, path, errs););
            }
            if self.alias_cycle(target) {
                return TokenStream::new();
            }
            return self.value_checks(resolved, depth + 1);
        }
        let Some(obj) = schema.as_object() else {
            return TokenStream::new();
        };
        if let Some(inner) = strip_null(obj) {
            let checks = self.value_checks(&inner, depth + 1);
            if checks.is_empty() {
                return checks;
            }
            return quote! {
                if let ::core::option::Option::Some(v) = rt::present(v) {
                    #checks
                }
            };
        }
        if string_enum(obj).is_some() {
            return TokenStream::new();
        }
        if needs_definition(obj) {
            return quote!(rt::Validate::validate(v, path, errs););
        }
        if let Some([single]) = obj
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            return self.value_checks(single, depth + 1);
        }
        let ty = obj.get("type").and_then(Value::as_str).or_else(|| {
            let value =
                obj.get("const")
                    .or_else(|| match obj.get("enum")?.as_array()?.as_slice() {
                        [single] => Some(single),
                        _ => None,
                    })?;
            match value {
                Value::String(_) => Some("string"),
                Value::Bool(_) => Some("boolean"),
                Value::Number(n) if n.is_f64() => Some("number"),
                Value::Number(_) => Some("integer"),
                _ => None,
            }
        });
        let mut out = TokenStream::new();
        match ty {
            Some("string") => {
                if !self.mapped_format(obj) {
                    string_checks(obj, &mut out);
                }
            }
            Some("integer" | "number") => number_checks(obj, &mut out),
            Some("boolean") => {
                if let Some(b) = obj.get("const").and_then(Value::as_bool) {
                    out.extend(quote!(rt::const_bool(path, v, #b, errs);));
                }
            }
            Some("array") => {
                let tuple = obj.contains_key("prefixItems")
                    || obj.get("items").is_some_and(Value::is_array);
                if !tuple {
                    self.array_checks(obj, depth, &mut out);
                }
            }
            Some("object") | None if is_objectish(obj) => self.map_checks(obj, depth, &mut out),
            Some("null") => {}
            _ => {
                // A `serde_json::Value`: every keyword applies to the values of its kind.
                string_checks(obj, &mut out);
                number_checks(obj, &mut out);
                self.array_checks(obj, depth, &mut out);
                object_count_checks(obj, quote!(rt::count(v)), &mut out);
            }
        }
        out
    }

    fn array_checks(&self, obj: &Map<String, Value>, depth: usize, out: &mut TokenStream) {
        if let Some(n) = usize_of(obj, "minItems") {
            out.extend(quote!(rt::min_items(path, v, #n, errs);));
        }
        if let Some(n) = usize_of(obj, "maxItems") {
            out.extend(quote!(rt::max_items(path, v, #n, errs);));
        }
        if obj.get("uniqueItems") == Some(&Value::Bool(true)) {
            out.extend(quote!(rt::unique_items(path, v, errs);));
        }
        if let Some(items @ Value::Object(_)) = obj.get("items") {
            let checks = self.value_checks(items, depth + 1);
            if !checks.is_empty() {
                out.extend(quote! {
                    for (i, v) in rt::items(v).iter().enumerate() {
                        let path = &path.index(i);
                        #checks
                    }
                });
            }
        }
    }

    fn map_checks(&self, obj: &Map<String, Value>, depth: usize, out: &mut TokenStream) {
        object_count_checks(obj, quote!(rt::count(v)), out);
        if let Some(values @ Value::Object(o)) = obj.get("additionalProperties") {
            if o.is_empty() {
                return;
            }
            let checks = self.value_checks(values, depth + 1);
            if !checks.is_empty() {
                out.extend(quote! {
                    for (k, v) in rt::entries(v) {
                        let path = &path.field(k);
                        #checks
                    }
                });
            }
        }
    }

    /// The checks of one struct field named `fid` (its Rust type wrapped in `Option` when
    /// `optional`).
    pub(super) fn field_checks(
        wire: &str,
        fid: &syn::Ident,
        checks: &TokenStream,
        optional: bool,
        bound: bool,
    ) -> TokenStream {
        if checks.is_empty() {
            return TokenStream::new();
        }
        let value = if bound {
            quote!(#fid)
        } else {
            quote!(&self.#fid)
        };
        if optional {
            quote! {
                if let ::core::option::Option::Some(v) = #value {
                    let path = &path.field(#wire);
                    #checks
                }
            }
        } else {
            quote! {
                {
                    let path = &path.field(#wire);
                    let v = #value;
                    #checks
                }
            }
        }
    }

    /// The items after a struct: its default functions, its `Default` (when every field is
    /// optional and some have a default) and its `impl Validate`.
    pub(super) fn struct_impls(
        &self,
        id: &syn::Ident,
        shape: &Shape,
        all_optional: bool,
    ) -> TokenStream {
        let mut names = Scope::with_reserved(&["additional_properties"]);
        let mut default_fns = Vec::new();
        let mut default_fields = Vec::new();
        let mut checks = TokenStream::new();
        let mut fixed = 0usize;
        let mut counted = Vec::new();
        for f in &shape.fields {
            let fid = ident(&names.claim(&snake(&f.wire)));
            let defaulted = !f.required && f.default.is_some();
            if let (true, Some(expr)) = (defaulted, &f.default) {
                let name = default_fn(&fid);
                let ty = &f.ty;
                let doc = format!(" The schema's default for `{}`.", f.wire.replace('`', "'"));
                default_fns.push(quote! {
                    #[doc = #doc]
                    pub fn #name() -> #ty {
                        #expr
                    }
                });
                default_fields.push(quote!(#fid: Self::#name(),));
            } else {
                default_fields.push(quote!(#fid: ::core::default::Default::default(),));
            }
            let optional = !f.required && !f.nullable && !defaulted;
            checks.extend(Self::field_checks(
                &f.wire, &fid, &f.checks, optional, false,
            ));
            if optional || f.nullable {
                counted.push(quote!(usize::from(self.#fid.is_some())));
            } else {
                fixed += 1;
            }
        }
        if let Additional::Map(_, value_checks) = &shape.additional {
            default_fields
                .push(quote!(additional_properties: ::core::default::Default::default(),));
            counted.push(quote!(self.additional_properties.len()));
            if !value_checks.is_empty() {
                checks.extend(quote! {
                    for (k, v) in &self.additional_properties {
                        let path = &path.field(k);
                        #value_checks
                    }
                });
            }
        }
        if !shape.count_checks.is_empty() {
            let count_checks = &shape.count_checks;
            let fixed = proc_macro2::Literal::usize_unsuffixed(fixed);
            checks.extend(quote! {
                let count = #fixed #(+ #counted)*;
                #count_checks
            });
        }
        let mut out = TokenStream::new();
        if !default_fns.is_empty() {
            out.extend(quote! {
                impl #id {
                    #(#default_fns)*
                }
            });
            if all_optional {
                out.extend(quote! {
                    impl ::core::default::Default for #id {
                        fn default() -> Self {
                            Self {
                                #(#default_fields)*
                            }
                        }
                    }
                });
            }
        }
        out.extend(self.validate_impl(id, checks));
        out
    }

    /// `impl Validate for #id` with `body` (which uses `rt`, `path` and `errs`), or with an
    /// empty body.
    pub(super) fn validate_impl(&self, id: &syn::Ident, body: TokenStream) -> TokenStream {
        if !self.opts.validate {
            return TokenStream::new();
        }
        if body.is_empty() {
            return quote!(::ruststream::validate::unconstrained!(#id););
        }
        // A recursive type's `validate` may pass `errs` (and `path`) on to itself only.
        let name = id.to_string();
        let cyclic = self
            .names
            .iter()
            .any(|(key, n)| *n == name && self.reaches_itself(key));
        let recursion = if cyclic && body.to_string().contains("Validate :: validate") {
            quote!(#[allow(clippy::only_used_in_recursion)])
        } else {
            quote!()
        };
        let body = quote! {
            use ::ruststream::validate::rt;
            #body
        };
        quote! {
            impl ::ruststream::validate::Validate for #id {
                #recursion
                fn validate(&self, path: &::ruststream::validate::Path<'_>, errs: &mut ::ruststream::validate::Violations) {
                    #body
                }
            }
        }
    }

    /// The Rust expression of a property's `default`, for a field of type `ty`, when the
    /// generator can write one (scalars, string enums, empty arrays and maps).
    pub(super) fn default_expr(&self, prop: &Value, ty: &TokenStream) -> Option<TokenStream> {
        let value = prop
            .get("default")
            .or_else(|| self.resolve(prop).get("default"))?;
        let parsed: syn::Type = syn::parse2(ty.clone()).ok()?;
        self.default_for(value, &parsed, prop, 0)
    }

    fn default_for(
        &self,
        value: &Value,
        ty: &syn::Type,
        schema: &Value,
        depth: usize,
    ) -> Option<TokenStream> {
        if depth > 2 {
            return None;
        }
        let syn::Type::Path(path) = ty else {
            return None;
        };
        let last = path.path.segments.last()?;
        let name = last.ident.to_string();
        let inner = || match &last.arguments {
            syn::PathArguments::AngleBracketed(args) => match args.args.first() {
                Some(syn::GenericArgument::Type(t)) => Some(t),
                _ => None,
            },
            _ => None,
        };
        let int_range = |min: i128, max: i128| {
            let n = value
                .as_i64()
                .map(i128::from)
                .or_else(|| value.as_u64().map(i128::from))?;
            (min..=max).contains(&n).then(|| {
                let lit = proc_macro2::Literal::i128_unsuffixed(n);
                quote!(#lit)
            })
        };
        match name.as_str() {
            "Option" => {
                if value.is_null() {
                    return None;
                }
                let inner_schema = schema
                    .as_object()
                    .and_then(strip_null)
                    .unwrap_or_else(|| schema.clone());
                let expr = self.default_for(value, inner()?, &inner_schema, depth + 1)?;
                Some(quote!(::core::option::Option::Some(#expr)))
            }
            "i8" => int_range(i8::MIN.into(), i8::MAX.into()),
            "i16" => int_range(i16::MIN.into(), i16::MAX.into()),
            "i32" => int_range(i32::MIN.into(), i32::MAX.into()),
            "i64" => int_range(i64::MIN.into(), i64::MAX.into()),
            "u8" => int_range(0, u8::MAX.into()),
            "u16" => int_range(0, u16::MAX.into()),
            "u32" => int_range(0, u32::MAX.into()),
            "u64" => int_range(0, u64::MAX.into()),
            "f64" | "f32" => value.as_f64().filter(|x| x.is_finite()).map(f64_lit),
            "bool" => value.as_bool().map(|b| quote!(#b)),
            "String" => value
                .as_str()
                .map(|s| quote!(::std::string::String::from(#s))),
            "Vec" if value.as_array().is_some_and(Vec::is_empty) => {
                Some(quote!(::std::vec::Vec::new()))
            }
            "BTreeMap" | "Map" if value.as_object().is_some_and(Map::is_empty) => {
                Some(quote!(::core::default::Default::default()))
            }
            _ if path.path.segments.len() == 1 => {
                // A string enum: the variant named like `define_string_enum` names it.
                let resolved = self.resolve(schema);
                let values = string_enum(resolved.as_object()?)?;
                let wanted = value.as_str()?;
                let mut scope = Scope::default();
                let variant = values
                    .iter()
                    .map(|v| (v, scope.claim(&pascal(v))))
                    .find(|(v, _)| v.as_str() == wanted)
                    .map(|(_, name)| format_ident!("{}", name))?;
                let id = &last.ident;
                Some(quote!(#id::#variant))
            }
            _ => None,
        }
    }
}

fn string_checks(obj: &Map<String, Value>, out: &mut TokenStream) {
    if let Some(n) = usize_of(obj, "minLength") {
        out.extend(quote!(rt::min_length(path, v, #n, errs);));
    }
    if let Some(n) = usize_of(obj, "maxLength") {
        out.extend(quote!(rt::max_length(path, v, #n, errs);));
    }
    if let Some(p) = obj.get("pattern").and_then(Value::as_str) {
        // Patterns the runtime's engine cannot compile are not checked (rather than refusing
        // every message).
        let pattern = match compile_pattern(p) {
            Some(matcher) => Some(quote!(rt::Pattern::compiled(#p, #matcher))),
            None => regex::Regex::new(p)
                .is_ok()
                .then(|| quote!(rt::Pattern::new(#p))),
        };
        if let Some(pattern) = pattern {
            out.extend(quote! {
                {
                    #[allow(clippy::manual_is_ascii_check)]
                    static PATTERN: rt::Pattern = #pattern;
                    rt::pattern(path, v, &PATTERN, errs);
                }
            });
        }
    }
    if let Some(f) = obj.get("format").and_then(Value::as_str) {
        if CHECKED_FORMATS.contains(&f) {
            out.extend(quote!(rt::format(path, v, #f, errs);));
        }
    }
    let allowed: Option<Vec<&str>> = match (obj.get("const"), obj.get("enum")) {
        (Some(Value::String(s)), _) => Some(vec![s.as_str()]),
        (None, Some(Value::Array(values))) => values.iter().map(Value::as_str).collect(),
        _ => None,
    };
    if let Some(allowed) = allowed.filter(|a| !a.is_empty()) {
        out.extend(quote!(rt::one_of_str(path, v, &[#(#allowed),*], errs);));
    }
}

fn number_checks(obj: &Map<String, Value>, out: &mut TokenStream) {
    let num = |key: &str| {
        obj.get(key)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite())
    };
    // Draft 4 (OpenAPI 3.0, AsyncAPI 2.x schemas): `exclusiveMinimum: true` makes `minimum`
    // exclusive.
    let exclusive = |key: &str| obj.get(key) == Some(&Value::Bool(true));
    if let Some(b) = num("minimum") {
        let lit = f64_lit(b);
        if exclusive("exclusiveMinimum") {
            out.extend(quote!(rt::exclusive_minimum(path, v, #lit, errs);));
        } else {
            out.extend(quote!(rt::minimum(path, v, #lit, errs);));
        }
    }
    if let Some(b) = num("maximum") {
        let lit = f64_lit(b);
        if exclusive("exclusiveMaximum") {
            out.extend(quote!(rt::exclusive_maximum(path, v, #lit, errs);));
        } else {
            out.extend(quote!(rt::maximum(path, v, #lit, errs);));
        }
    }
    if let Some(b) = num("exclusiveMinimum") {
        let lit = f64_lit(b);
        out.extend(quote!(rt::exclusive_minimum(path, v, #lit, errs);));
    }
    if let Some(b) = num("exclusiveMaximum") {
        let lit = f64_lit(b);
        out.extend(quote!(rt::exclusive_maximum(path, v, #lit, errs);));
    }
    if let Some(b) = num("multipleOf").filter(|b| *b > 0.0) {
        let lit = f64_lit(b);
        out.extend(quote!(rt::multiple_of(path, v, #lit, errs);));
    }
    let allowed: Option<Vec<f64>> = match (obj.get("const"), obj.get("enum")) {
        (Some(c @ Value::Number(_)), _) => c.as_f64().map(|x| vec![x]),
        (None, Some(Value::Array(values))) => values.iter().map(Value::as_f64).collect(),
        _ => None,
    };
    if let Some(allowed) = allowed.filter(|a| !a.is_empty() && a.iter().all(|x| x.is_finite())) {
        let lits = allowed.into_iter().map(f64_lit);
        out.extend(quote!(rt::one_of_number(path, v, &[#(#lits),*], errs);));
    }
}

/// `minProperties`/`maxProperties` of an object whose property count is `count`.
pub(super) fn object_count_checks(
    obj: &Map<String, Value>,
    count: TokenStream,
    out: &mut TokenStream,
) {
    let min = usize_of(obj, "minProperties");
    let max = usize_of(obj, "maxProperties");
    if min.is_none() && max.is_none() {
        return;
    }
    let mut checks = TokenStream::new();
    if let Some(n) = min {
        checks.extend(quote!(rt::min_properties(path, count, #n, errs);));
    }
    if let Some(n) = max {
        checks.extend(quote!(rt::max_properties(path, count, #n, errs);));
    }
    if count.to_string() == "count" {
        // The caller bound `count` already.
        out.extend(checks);
        return;
    }
    out.extend(quote! {
        {
            let count = #count;
            #checks
        }
    });
}

/// `match self { arms }`, or nothing when no arm checks anything.
pub(super) fn match_body(arms: Vec<TokenStream>, checks_something: bool) -> TokenStream {
    if !checks_something {
        return TokenStream::new();
    }
    quote! {
        match self {
            #(#arms)*
        }
    }
}

/// Whether a defined item is a struct or an enum (not a type alias).
pub(super) fn defines_struct_or_enum(item: &TypeItem) -> bool {
    match item {
        TypeItem::Braced { .. } => true,
        TypeItem::Tokens(tokens) => tokens.clone().into_iter().any(
            |t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "struct" || i == "enum"),
        ),
    }
}

/// A `pattern` that is an anchored sequence of ASCII character classes, every one but the last
/// of a fixed length (`^[a-z0-9-]+$`, `^[A-Z]{3}$`, `^\d{3}-\d{4}$`), as the body of a
/// `fn(&str) -> bool` for `rt::Pattern::compiled`. It works on bytes: a byte of a non-ASCII
/// character never matches an ASCII class, so counting bytes counts characters. `None` for
/// anything else (matched with the `regex` crate at run time).
fn compile_pattern(p: &str) -> Option<TokenStream> {
    let body = p.strip_prefix('^')?.strip_suffix('$')?;
    if body.ends_with('\\') {
        return None;
    }
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut steps: Vec<(TokenStream, usize, usize)> = Vec::new();
    while i < chars.len() {
        let (class, next) = class_at(&chars, i)?;
        i = next;
        let (min, max, next) = quantifier_at(&chars, i)?;
        i = next;
        if let Some((_, pmin, pmax)) = steps.last() {
            if pmin != pmax {
                return None;
            }
        }
        steps.push((class, min, max));
    }
    let (last, fixed) = steps.split_last()?;
    if fixed.len() > 16 {
        return None;
    }
    let lit = proc_macro2::Literal::usize_unsuffixed;
    let prefix: usize = fixed.iter().map(|(_, n, _)| n).sum();
    let mut conds = Vec::new();
    let mut at = 0;
    for (class, n, _) in fixed {
        let (from, to) = (lit(at), lit(at + n));
        conds.push(quote!(b[#from..#to].iter().all(|&c| #class)));
        at += n;
    }
    let (class, min, max) = last;
    let rest = if prefix == 0 {
        quote!(b)
    } else {
        let from = lit(prefix);
        quote!(b[#from..])
    };
    conds.push(quote!(#rest.iter().all(|&c| #class)));
    let len = match (min + prefix, max.checked_add(prefix)) {
        (lo, Some(hi)) if lo == hi => {
            let lo = lit(lo);
            quote!(b.len() == #lo)
        }
        (lo, Some(hi)) if *max != usize::MAX => {
            let (lo, hi) = (lit(lo), lit(hi));
            quote!((#lo..=#hi).contains(&b.len()))
        }
        (0, _) => quote!(true),
        (1, _) => quote!(!b.is_empty()),
        (lo, _) => {
            let lo = lit(lo);
            quote!(b.len() >= #lo)
        }
    };
    Some(quote! {
        |s: &str| {
            let b = s.as_bytes();
            #len #(&& #conds)*
        }
    })
}

fn byte(c: char) -> TokenStream {
    let b = syn::LitByte::new(c as u8, proc_macro2::Span::call_site());
    quote!(#b)
}

/// The condition on the byte `c` of the ASCII class (or literal) at `i`, and the index after
/// it.
fn class_at(chars: &[char], i: usize) -> Option<(TokenStream, usize)> {
    const SPECIAL: &str = ".^$*+?()[]{}|\\/";
    let c = *chars.get(i)?;
    match c {
        '[' => {
            let mut j = i + 1;
            if chars.get(j) == Some(&'^') {
                // Negated classes match non-ASCII characters: left to the regex engine.
                return None;
            }
            let mut pats: Vec<TokenStream> = Vec::new();
            let mut first = true;
            loop {
                let c = *chars.get(j)?;
                if c == ']' && !first {
                    j += 1;
                    break;
                }
                first = false;
                let (lo, next) = match c {
                    '\\' => {
                        let e = *chars.get(j + 1)?;
                        match e {
                            'd' => {
                                pats.push(quote!(b'0'..=b'9'));
                                j += 2;
                                continue;
                            }
                            'w' => {
                                pats.push(quote!(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_'));
                                j += 2;
                                continue;
                            }
                            e if e.is_ascii_punctuation() => (e, j + 2),
                            _ => return None,
                        }
                    }
                    '[' => return None,
                    c if c.is_ascii() && !c.is_ascii_control() => (c, j + 1),
                    _ => return None,
                };
                j = next;
                if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|c| *c != ']') {
                    let hi = *chars.get(j + 1)?;
                    if hi == '\\' || hi == '[' || !hi.is_ascii() || hi.is_ascii_control() || hi < lo
                    {
                        return None;
                    }
                    let (lo, hi) = (byte(lo), byte(hi));
                    pats.push(quote!(#lo..=#hi));
                    j += 2;
                } else {
                    pats.push(byte(lo));
                }
            }
            Some((quote!(matches!(c, #(#pats)|*)), j))
        }
        '\\' => {
            let e = *chars.get(i + 1)?;
            let cond = match e {
                'd' => quote!(c.is_ascii_digit()),
                'w' => quote!(c.is_ascii_alphanumeric() || c == b'_'),
                e if e.is_ascii_punctuation() => {
                    let e = byte(e);
                    quote!(c == #e)
                }
                _ => return None,
            };
            Some((cond, i + 2))
        }
        c if SPECIAL.contains(c) || !c.is_ascii() || c.is_ascii_control() => None,
        c => {
            let c = byte(c);
            Some((quote!(c == #c), i + 1))
        }
    }
}

/// The bounds of the quantifier at `i` (`(1, 1)` when there is none) and the index after it.
fn quantifier_at(chars: &[char], i: usize) -> Option<(usize, usize, usize)> {
    let (min, max, next) = match chars.get(i) {
        Some('+') => (1, usize::MAX, i + 1),
        Some('*') => (0, usize::MAX, i + 1),
        Some('?') => (0, 1, i + 1),
        Some('{') => {
            let close = i + chars[i..].iter().position(|c| *c == '}')?;
            let inner: String = chars[i + 1..close].iter().collect();
            let (min, max) = match inner.split_once(',') {
                None => {
                    let n = inner.parse().ok()?;
                    (n, n)
                }
                Some((a, "")) => (a.parse().ok()?, usize::MAX),
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            };
            if min > max || min > 10_000 || (max != usize::MAX && max > 10_000) {
                return None;
            }
            (min, max, close + 1)
        }
        _ => (1, 1, i),
    };
    // A lazy or possessive suffix, or a second quantifier: not a simple class sequence.
    if next != i && matches!(chars.get(next), Some('?' | '+' | '*' | '{')) {
        return None;
    }
    Some((min, max, next))
}
