//! JSON Schema → Rust types.
//!
//! The mapping rules are documented on the crate root.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::{Map, Value};

use crate::naming::{Scope, doc_or, ident, pascal, snake};

mod validate;

/// Which Rust types string formats map to. Everything is `String` by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Formats {
    chrono: bool,
    time: bool,
    uuid: bool,
}

impl Formats {
    /// All formats as `String`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Map `date-time` to `chrono::DateTime<chrono::FixedOffset>`, `date` to
    /// `chrono::NaiveDate` and `time` to `chrono::NaiveTime` (the user's crate must depend on
    /// `chrono` with its `serde` feature).
    pub fn chrono(mut self, on: bool) -> Self {
        self.chrono = on;
        self
    }

    /// Map `date-time` properties to `time::OffsetDateTime`, read and written as RFC 3339 with
    /// `#[serde(with = "::time::serde::rfc3339")]` (`::option` for optional properties). The
    /// user's crate must depend on `time` with its `serde`, `formatting` and `parsing` features.
    ///
    /// Only object properties (required, optional or nullable) take the `time` type:
    /// `serde(with)` cannot reach a date-time inside an array, a map, a union or a schema of its
    /// own, and `time`'s own serde format is not RFC 3339, so those stay `String`, as do
    /// `date` and `time` (whose `time` serde formats depend on features of the user's `time`
    /// and on the codec). When [`Formats::chrono`] is also on, chrono wins.
    pub fn time(mut self, on: bool) -> Self {
        self.time = on;
        self
    }

    /// Map `uuid` to `uuid::Uuid` (the user's crate must depend on `uuid` with `serde`).
    pub fn uuid(mut self, on: bool) -> Self {
        self.uuid = on;
        self
    }
}

/// A generated type definition.
pub(crate) enum TypeItem {
    /// Any item.
    Tokens(TokenStream),
    /// `head { members }`: a struct's fields or an enum's variants, kept apart so that the
    /// formatter can reuse the text of a member it has already formatted.
    Braced {
        head: TokenStream,
        members: Vec<TokenStream>,
        kind: BracedKind,
    },
}

/// What kind of item a [`TypeItem::Braced`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BracedKind {
    Struct,
    Enum,
}

impl TypeItem {
    /// The item as one token stream.
    pub(crate) fn into_tokens(self) -> TokenStream {
        match self {
            TypeItem::Tokens(t) => t,
            TypeItem::Braced { head, members, .. } => {
                crate::service::braced(head, members.into_iter().collect())
            }
        }
    }
}

impl From<TokenStream> for TypeItem {
    fn from(tokens: TokenStream) -> Self {
        TypeItem::Tokens(tokens)
    }
}

/// Options that affect type generation.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypeOptions {
    pub formats: Formats,
    /// Schema name → Rust type path used instead of generating one.
    pub replace: BTreeMap<String, TokenStream>,
    /// (schema name or Rust type name, or `.` for all) → attributes.
    pub attributes: Vec<(String, TokenStream)>,
    /// Emit `impl Validate` for every struct and enum (and refuse absent required nullable
    /// fields).
    pub validate: bool,
}

const REF_PREFIX: &str = "#/components/schemas/";

/// Deepest nesting of schema types generated; deeper schemas become `serde_json::Value`.
const MAX_TYPE_DEPTH: usize = 96;

fn ref_target(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .map(|r| r.strip_prefix(REF_PREFIX).unwrap_or(r))
}

fn str_field<'v>(schema: &'v Value, key: &str) -> Option<&'v str> {
    schema.get(key).and_then(Value::as_str)
}

/// Types generated from one document's schemas.
pub(crate) struct TypeGen<'a> {
    schemas: &'a BTreeMap<String, Value>,
    opts: &'a TypeOptions,
    scope: Scope,
    names: BTreeMap<String, String>,
    reach: BTreeMap<String, BTreeSet<String>>,
    memo: HashMap<*const Value, TokenStream>,
    root: Option<String>,
    items: Vec<TypeItem>,
    uses_map: bool,
    arena: Vec<std::rc::Rc<Value>>,
    /// The `null`-less copy of each nullable schema (by the original's address), made once so
    /// its address is stable: a schema that reaches itself is then recognised by [`TypeGen::memo`]
    /// and [`TypeGen::in_progress`].
    stripped: HashMap<*const Value, std::rc::Rc<Value>>,
    /// Inline schemas whose named type is being defined (by address): met again inside their
    /// own definition, they stand for themselves, boxed (a cycle through inline objects).
    in_progress: HashMap<*const Value, String>,
    /// Component schemas that would be type aliases on a cycle of aliases (`type A = Vec<A>`
    /// does not compile): they become newtype structs.
    alias_cycles: BTreeSet<String>,
    /// How deep [`TypeGen::ty`] calls are nested: past [`MAX_TYPE_DEPTH`] a schema becomes
    /// `serde_json::Value` instead of overflowing the stack.
    depth: usize,
    /// The next [`TypeGen::ty`] call is for an object property (where `serde(with)` can go).
    property: bool,
    /// The last property type was a `time::OffsetDateTime` that needs `serde(with)`.
    rfc3339: bool,
    /// Items that go right after the type being defined (`impl Validate`, defaults).
    extra: TokenStream,
    /// Names of the types that implement `Validate`.
    validated: BTreeSet<String>,
    alias_memo: validate::AliasMemo,
}

/// One struct field.
struct Field {
    wire: String,
    ty: TokenStream,
    required: bool,
    nullable: bool,
    /// `time::OffsetDateTime` (possibly in an `Option`) read and written as RFC 3339.
    rfc3339: bool,
    docs: TokenStream,
    /// The checks of the value (see [`TypeGen::value_checks`]).
    checks: TokenStream,
    /// The schema's `default`, as an expression of the field's type (not `Option`-wrapped).
    default: Option<TokenStream>,
    /// Required and nullable: absent is refused (serde would take it for `null`).
    require_present: bool,
}

/// The shape of an object schema (after `allOf` merging).
struct Shape {
    fields: Vec<Field>,
    additional: Additional,
    /// The object's `minProperties`/`maxProperties` checks, on a `count` binding.
    count_checks: TokenStream,
}

enum Additional {
    Ignore,
    Deny,
    /// The value type and its checks.
    Map(TokenStream, TokenStream),
}

impl<'a> TypeGen<'a> {
    /// Claim names for every component schema (sorted by key) so refs resolve in any order.
    pub fn new(schemas: &'a BTreeMap<String, Value>, opts: &'a TypeOptions, scope: Scope) -> Self {
        let mut generator = TypeGen {
            schemas,
            opts,
            scope,
            names: BTreeMap::new(),
            reach: BTreeMap::new(),
            memo: HashMap::new(),
            root: None,
            items: Vec::new(),
            uses_map: false,
            arena: Vec::new(),
            stripped: HashMap::new(),
            in_progress: HashMap::new(),
            alias_cycles: BTreeSet::new(),
            depth: 0,
            property: false,
            rfc3339: false,
            extra: TokenStream::new(),
            validated: BTreeSet::new(),
            alias_memo: validate::AliasMemo::default(),
        };
        for key in schemas.keys() {
            if !opts.replace.contains_key(key) {
                let name = generator.scope.claim(&pascal(key));
                generator.names.insert(key.clone(), name);
            }
        }
        generator.compute_reach();
        generator.compute_alias_cycles();
        generator
    }

    /// The scope of type names (for callers that add their own items).
    pub fn scope(&mut self) -> &mut Scope {
        &mut self.scope
    }

    /// Generate every component schema.
    pub fn generate_components(&mut self) {
        for (key, schema) in self.schemas {
            let Some(name) = self.names.get(key).cloned() else {
                continue;
            };
            self.root = Some(key.clone());
            self.define(&name, key, schema);
            self.root = None;
        }
    }

    /// Define a named type for `schema` even when it is a primitive (`pub type X = ..`).
    /// Returns the name used.
    pub fn named_type_for(&mut self, schema: &Value, hint: &str) -> TokenStream {
        if let Some(target) = ref_target(schema) {
            return self.ref_type(target);
        }
        let name = self.scope.claim(&pascal(hint));
        self.root = None;
        self.define(&name, &name.clone(), schema);
        let id = format_ident!("{}", name);
        quote!(#id)
    }

    /// Whether the generated type `ty` (a name) implements `Validate`.
    pub fn validates(&self, ty: &TokenStream) -> bool {
        syn::parse2::<syn::Ident>(ty.clone())
            .is_ok_and(|id| self.validated.contains(&id.to_string()))
    }

    /// The generated items, in generation order.
    pub fn finish(self) -> (Vec<TypeItem>, bool) {
        (self.items, self.uses_map)
    }

    fn compute_reach(&mut self) {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (key, schema) in self.schemas {
            let mut out = BTreeSet::new();
            direct_refs(schema, &mut out);
            edges.insert(key.clone(), out);
        }
        for key in self.schemas.keys() {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&String> = edges.get(key).into_iter().flatten().collect();
            while let Some(next) = stack.pop() {
                if seen.insert(next.clone()) {
                    stack.extend(edges.get(next).into_iter().flatten());
                }
            }
            self.reach.insert(key.clone(), seen);
        }
    }

    /// Component schemas that would be aliases reaching themselves through aliases only.
    fn compute_alias_cycles(&mut self) {
        let aliases: BTreeMap<&String, BTreeSet<String>> = self
            .schemas
            .iter()
            .filter(|(_, schema)| is_alias(schema))
            .map(|(key, schema)| {
                let mut out = BTreeSet::new();
                alias_refs(schema, &mut out, 0);
                (key, out)
            })
            .collect();
        for &key in aliases.keys() {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&String> = aliases.get(key).into_iter().flatten().collect();
            while let Some(next) = stack.pop() {
                if next == key {
                    self.alias_cycles.insert(key.clone());
                    break;
                }
                if seen.insert(next.clone()) {
                    stack.extend(aliases.get(next).into_iter().flatten());
                }
            }
        }
    }

    fn attributes_for(&self, schema_key: &str, rust_name: &str) -> TokenStream {
        let attrs = self
            .opts
            .attributes
            .iter()
            .filter(|(path, _)| path == "." || path == schema_key || path == rust_name)
            .map(|(_, attr)| attr);
        quote!(#(#attrs)*)
    }

    fn ref_type(&mut self, target: &str) -> TokenStream {
        if let Some(ty) = self.opts.replace.get(target) {
            return quote!(#ty);
        }
        let Some(name) = self.names.get(target) else {
            // A ref the model did not resolve into `schemas`: keep the data, lose the type.
            return quote!(::ruststream::reexports::serde_json::Value);
        };
        let id = format_ident!("{}", name);
        let cyclic = self.root.as_ref().is_some_and(|root| {
            self.reach
                .get(target)
                .is_some_and(|reachable| reachable.contains(root))
        });
        if cyclic {
            quote!(::std::boxed::Box<#id>)
        } else {
            quote!(#id)
        }
    }

    /// The type of `schema` in a field/item position.
    fn ty(&mut self, schema: &Value, hint: &str) -> TokenStream {
        if self.depth >= MAX_TYPE_DEPTH {
            self.property = false;
            return quote!(::ruststream::reexports::serde_json::Value);
        }
        self.depth += 1;
        let ty = self.ty_nested(schema, hint);
        self.depth -= 1;
        ty
    }

    fn ty_nested(&mut self, schema: &Value, hint: &str) -> TokenStream {
        let property = std::mem::take(&mut self.property);
        if let Some(target) = ref_target(schema) {
            return self.ref_type(target);
        }
        let Some(obj) = schema.as_object() else {
            return quote!(::ruststream::reexports::serde_json::Value);
        };
        let key = schema as *const Value;
        let stripped = match self.stripped.get(&key) {
            Some(inner) => Some(std::rc::Rc::clone(inner)),
            None => strip_null(obj).map(|inner| {
                // Kept alive (and reused) so its address, the memo key, is stable.
                let inner = std::rc::Rc::new(inner);
                self.arena.push(std::rc::Rc::clone(&inner));
                self.stripped.insert(key, std::rc::Rc::clone(&inner));
                inner
            }),
        };
        if let Some(inner) = stripped {
            self.property = property;
            let inner_ty = self.ty(&inner, hint);
            return quote!(::core::option::Option<#inner_ty>);
        }
        if let Some(ty) = self.memo.get(&key) {
            return ty.clone();
        }
        if let Some(name) = self.in_progress.get(&key) {
            // The schema reaches itself through inline objects: the type being defined.
            let id = format_ident!("{}", name);
            return quote!(::std::boxed::Box<#id>);
        }
        self.property = property;
        let ty = self.ty_uncached(schema, obj, hint);
        self.property = false;
        // Only named definitions are remembered (so each is defined once); other types are
        // cheap to rebuild and may differ by context (a `Box` on a cycle).
        if needs_definition(obj) {
            self.memo.insert(schema as *const Value, ty.clone());
        }
        ty
    }

    fn ty_uncached(&mut self, schema: &Value, obj: &Map<String, Value>, hint: &str) -> TokenStream {
        let property = std::mem::take(&mut self.property);
        if needs_definition(obj) {
            let base = str_field(schema, "title")
                .map(pascal)
                .unwrap_or_else(|| pascal(hint));
            let name = self.scope.claim(&base);
            let key = schema as *const Value;
            self.in_progress.insert(key, name.clone());
            self.define(&name, &name.clone(), schema);
            self.in_progress.remove(&key);
            let id = format_ident!("{}", name);
            return quote!(#id);
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            if let [single] = all.as_slice() {
                return self.ty(single, hint);
            }
        }
        let ty = obj.get("type").and_then(Value::as_str).or_else(|| {
            // A bare `const` (or single-value enum) has the type of its value.
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
        match ty {
            Some("string") => self.string_type(obj, property),
            Some("integer") => integer_type(obj),
            Some("number") => {
                if str_field(schema, "format") == Some("float") {
                    quote!(f32)
                } else {
                    quote!(f64)
                }
            }
            Some("boolean") => quote!(bool),
            Some("null") => quote!(()),
            Some("array") => self.array_type(obj, hint),
            Some("object") | None if is_objectish(obj) => self.map_type(obj, hint),
            _ => quote!(::ruststream::reexports::serde_json::Value),
        }
    }

    fn string_type(&mut self, obj: &Map<String, Value>, property: bool) -> TokenStream {
        let format = obj.get("format").and_then(Value::as_str);
        let formats = &self.opts.formats;
        if format == Some("date-time") && formats.time && !formats.chrono && property {
            self.rfc3339 = true;
            return quote!(::time::OffsetDateTime);
        }
        match format {
            Some("date-time") if self.opts.formats.chrono => {
                quote!(::chrono::DateTime<::chrono::FixedOffset>)
            }
            Some("date") if self.opts.formats.chrono => quote!(::chrono::NaiveDate),
            Some("time") if self.opts.formats.chrono => quote!(::chrono::NaiveTime),
            Some("uuid") if self.opts.formats.uuid => quote!(::uuid::Uuid),
            _ => quote!(::std::string::String),
        }
    }

    fn array_type(&mut self, obj: &Map<String, Value>, hint: &str) -> TokenStream {
        let tuple = obj
            .get("prefixItems")
            .or_else(|| obj.get("items").filter(|i| i.is_array()))
            .and_then(Value::as_array);
        if let Some(parts) = tuple {
            let item_hint = format!("{hint}Item");
            let tys: Vec<_> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| self.ty(p, &format!("{item_hint}{i}")))
                .collect();
            return quote!((#(#tys,)*));
        }
        let item = match obj.get("items") {
            Some(items) => {
                let saved = self.root.take();
                let ty = self.ty(items, &format!("{hint}Item"));
                self.root = saved;
                ty
            }
            None => quote!(::ruststream::reexports::serde_json::Value),
        };
        quote!(::std::vec::Vec<#item>)
    }

    fn map_type(&mut self, obj: &Map<String, Value>, hint: &str) -> TokenStream {
        let value = match obj.get("additionalProperties") {
            Some(v @ Value::Object(_)) if !v.as_object().is_some_and(Map::is_empty) => {
                let saved = self.root.take();
                let ty = self.ty(v, &format!("{hint}Value"));
                self.root = saved;
                ty
            }
            _ => {
                return quote!(::ruststream::reexports::serde_json::Map<::std::string::String, ::ruststream::reexports::serde_json::Value>);
            }
        };
        self.uses_map = true;
        quote!(::std::collections::BTreeMap<::std::string::String, #value>)
    }

    /// Emit a named item for `schema`.
    fn define(&mut self, name: &str, key: &str, schema: &Value) {
        // Reserve the slot first so a type comes before the types nested in it.
        let slot = self.items.len();
        self.items.push(TypeItem::Tokens(TokenStream::new()));
        // The impls of the type come right after it.
        self.items.push(TypeItem::Tokens(TokenStream::new()));
        let saved = std::mem::take(&mut self.extra);
        let item = self.define_item(name, key, schema);
        let mut extra = std::mem::replace(&mut self.extra, saved);
        if self.opts.validate && validate::defines_struct_or_enum(&item) {
            let text = extra.to_string();
            if !text.contains("Validate for") && !text.contains("unconstrained") {
                extra.extend(self.validate_impl(&format_ident!("{}", name), TokenStream::new()));
            }
            self.validated.insert(name.to_owned());
        }
        self.items[slot] = item;
        self.items[slot + 1] = TypeItem::Tokens(extra);
    }

    fn define_item(&mut self, name: &str, key: &str, schema: &Value) -> TypeItem {
        let id = format_ident!("{}", name);
        let docs = doc_or(
            str_field(schema, "title"),
            str_field(schema, "description"),
            &format!("The `{}` schema.", key.replace('`', "'")),
        );
        let attrs = self.attributes_for(key, name);
        let Some(obj) = schema.as_object() else {
            return quote! {
                #docs
                pub type #id = ::ruststream::reexports::serde_json::Value;
            }
            .into();
        };
        if ref_target(schema).is_none() && strip_null(obj).is_none() {
            if let Some(values) = string_enum(obj) {
                return self.define_string_enum(&id, &values, docs, attrs);
            }
            if let Some(variants) = obj.get("oneOf").and_then(Value::as_array) {
                return self
                    .define_one_of(&id, schema, variants, docs, attrs)
                    .into();
            }
            if let Some(variants) = obj.get("anyOf").and_then(Value::as_array) {
                return self.define_untagged(&id, variants, docs, attrs).into();
            }
            let all_of_objects = obj
                .get("allOf")
                .and_then(Value::as_array)
                .is_some_and(|parts| parts.len() > 1);
            if obj.contains_key("properties") || all_of_objects {
                let shape = self.shape(schema, name, None);
                return self.define_struct(&id, shape, docs, attrs);
            }
            if obj.get("additionalProperties") == Some(&Value::Bool(false)) && is_objectish(obj) {
                let shape = Shape {
                    fields: Vec::new(),
                    additional: Additional::Deny,
                    count_checks: TokenStream::new(),
                };
                return self.define_struct(&id, shape, docs, attrs);
            }
        }
        let ty = self.ty(schema, &format!("{name}Inner"));
        if self.alias_cycles.contains(key) {
            // `type A = Vec<A>` would be a cycle of aliases: a newtype breaks it.
            return quote! {
                #docs
                #[derive(Debug, Clone, PartialEq, ::ruststream::reexports::serde::Serialize, ::ruststream::reexports::serde::Deserialize)]
                #[serde(crate = "::ruststream::reexports::serde")]
                #[serde(transparent)]
                #attrs
                pub struct #id(pub #ty);
            }
            .into();
        }
        quote! {
            #docs
            pub type #id = #ty;
        }
        .into()
    }

    fn define_string_enum(
        &mut self,
        id: &syn::Ident,
        values: &[String],
        docs: TokenStream,
        attrs: TokenStream,
    ) -> TypeItem {
        let mut scope = Scope::default();
        let variants = values.iter().map(|v| {
            let name = format_ident!("{}", scope.claim(&pascal(v)));
            let doc = format!(" `{}`", v.replace('`', "'"));
            quote! {
                #[doc = #doc]
                #[serde(rename = #v)]
                #name,
            }
        });
        let variants: Vec<_> = variants.collect();
        TypeItem::Braced {
            head: quote! {
                #docs
                #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::ruststream::reexports::serde::Serialize, ::ruststream::reexports::serde::Deserialize)]
                #[serde(crate = "::ruststream::reexports::serde")]
                #attrs
                pub enum #id
            },
            members: variants,
            kind: BracedKind::Enum,
        }
    }

    fn define_untagged(
        &mut self,
        id: &syn::Ident,
        variants: &[Value],
        docs: TokenStream,
        attrs: TokenStream,
    ) -> TokenStream {
        let mut scope = Scope::default();
        let mut out = Vec::new();
        let mut arms = Vec::new();
        let mut any_checks = false;
        for variant in variants {
            if str_field(variant, "type") == Some("null") {
                continue;
            }
            let vname = scope.claim(&self.variant_name(variant));
            let ty = self.ty(variant, &format!("{id}{vname}"));
            let vid = format_ident!("{}", vname);
            let vdocs = doc_or(
                None,
                str_field(variant, "description"),
                &format!("A `{vname}` value."),
            );
            out.push(quote! {
                #vdocs
                #vid(#ty),
            });
            let checks = self.value_checks(variant, 1);
            any_checks |= !checks.is_empty();
            arms.push(if checks.is_empty() {
                quote!(Self::#vid(_) => {})
            } else {
                quote!(Self::#vid(v) => { #checks })
            });
        }
        let body = validate::match_body(arms, any_checks);
        self.extra.extend(self.validate_impl(id, body));
        quote! {
            #docs
            #[derive(Debug, Clone, PartialEq, ::ruststream::reexports::serde::Serialize, ::ruststream::reexports::serde::Deserialize)]
            #[serde(crate = "::ruststream::reexports::serde")]
            #[serde(untagged)]
            // Variants mirror the schema; boxing the large ones would only hurt construction.
            #[allow(clippy::large_enum_variant)]
            #attrs
            pub enum #id {
                #(#out)*
            }
        }
    }

    fn variant_name(&self, variant: &Value) -> String {
        if let Some(target) = ref_target(variant) {
            return self
                .names
                .get(target)
                .cloned()
                .unwrap_or_else(|| pascal(target));
        }
        if let Some(title) = str_field(variant, "title") {
            return pascal(title);
        }
        match str_field(variant, "type") {
            Some(t) => pascal(t),
            None if variant.get("properties").is_some() => "Object".to_owned(),
            None => "Value".to_owned(),
        }
    }

    fn resolve<'v>(&self, schema: &'v Value) -> &'v Value
    where
        'a: 'v,
    {
        let mut current = schema;
        for _ in 0..32 {
            match ref_target(current).and_then(|t| self.schemas.get(t)) {
                Some(next) => current = next,
                None => break,
            }
        }
        current
    }

    fn define_one_of(
        &mut self,
        id: &syn::Ident,
        schema: &Value,
        variants: &[Value],
        docs: TokenStream,
        attrs: TokenStream,
    ) -> TokenStream {
        let Some((tag, values)) = self.find_tag(schema, variants) else {
            return self.define_untagged(id, variants, docs, attrs);
        };
        let mut scope = Scope::default();
        let mut out = Vec::new();
        let mut arms = Vec::new();
        let mut any_checks = false;
        for (variant, value) in variants.iter().zip(&values) {
            let vname = scope.claim(&pascal(value));
            let hint = format!("{id}{vname}");
            let saved = self.root.clone();
            if let Some(target) = ref_target(variant) {
                self.root = Some(target.to_owned());
            }
            let shape = self.shape(variant, &hint, Some(&tag));
            self.root = saved;
            let vid = format_ident!("{}", vname);
            let fields = render_fields(
                shape.fields.iter().filter(|f| f.wire != tag),
                &mut Scope::default(),
                false,
                None,
            );
            let mut names = Scope::default();
            let mut bound = Vec::new();
            let mut checks = TokenStream::new();
            for f in shape.fields.iter().filter(|f| f.wire != tag) {
                let fid = ident(&names.claim(&snake(&f.wire)));
                let optional = !f.required && !f.nullable;
                let c = Self::field_checks(&f.wire, &fid, &f.checks, optional, true);
                if !c.is_empty() {
                    checks.extend(c);
                    bound.push(fid);
                }
            }
            any_checks |= !bound.is_empty();
            arms.push(quote! {
                Self::#vid { #(#bound,)* .. } => { #checks }
            });
            let vdocs = doc_or(
                None,
                str_field(self.resolve(variant), "description"),
                &format!("`{tag}` is `{}`.", value.replace('`', "'")),
            );
            out.push(quote! {
                #vdocs
                #[serde(rename = #value)]
                #vid {
                    #(#fields)*
                },
            });
        }
        let body = validate::match_body(arms, any_checks);
        self.extra.extend(self.validate_impl(id, body));
        quote! {
            #docs
            #[derive(Debug, Clone, PartialEq, ::ruststream::reexports::serde::Serialize, ::ruststream::reexports::serde::Deserialize)]
            #[serde(crate = "::ruststream::reexports::serde")]
            #[serde(tag = #tag)]
            // Variants mirror the schema; boxing the large ones would only hurt construction.
            #[allow(clippy::large_enum_variant)]
            #attrs
            pub enum #id {
                #(#out)*
            }
        }
    }

    /// The tag property and each variant's tag value, when every variant can be told apart.
    fn find_tag(&self, schema: &Value, variants: &[Value]) -> Option<(String, Vec<String>)> {
        if variants.is_empty() {
            return None;
        }
        let discriminator = schema.get("discriminator").and_then(|d| {
            d.as_str()
                .or_else(|| d.get("propertyName").and_then(Value::as_str))
        });
        let props: Vec<Vec<(String, &Value)>> =
            variants.iter().map(|v| self.properties_of(v)).collect();
        let candidates: Vec<String> = match discriminator {
            Some(d) => vec![d.to_owned()],
            None => props
                .first()
                .map(|p| p.iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default(),
        };
        'candidate: for tag in candidates {
            let mut values = Vec::new();
            for (variant, props) in variants.iter().zip(&props) {
                let prop = props.iter().find(|(k, _)| *k == tag).map(|(_, s)| *s);
                let value = prop.and_then(|p| single_value(self.resolve(p)));
                let value = match (value, discriminator.is_some(), ref_target(variant)) {
                    (Some(v), _, _) => v,
                    (None, true, Some(target)) if prop.is_some() => target.to_owned(),
                    _ => continue 'candidate,
                };
                if values.contains(&value) {
                    continue 'candidate;
                }
                values.push(value);
            }
            return Some((tag, values));
        }
        None
    }

    /// Properties of an object schema, `allOf` parts merged, refs followed.
    fn properties_of<'v>(&self, schema: &'v Value) -> Vec<(String, &'v Value)>
    where
        'a: 'v,
    {
        let mut out: Vec<(String, &'v Value)> = Vec::new();
        self.collect_properties(schema, &mut out, &mut BTreeSet::new(), 0);
        out
    }

    fn collect_properties<'v>(
        &self,
        schema: &'v Value,
        out: &mut Vec<(String, &'v Value)>,
        required: &mut BTreeSet<String>,
        depth: usize,
    ) where
        'a: 'v,
    {
        if depth > 32 {
            return;
        }
        let schema = self.resolve(schema);
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            for part in parts {
                self.collect_properties(part, out, required, depth + 1);
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                if let Some(slot) = out.iter_mut().find(|(name, _)| name == k) {
                    slot.1 = v;
                } else {
                    out.push((k.clone(), v));
                }
            }
        }
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            required.extend(req.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }

    fn shape(&mut self, schema: &Value, type_name: &str, skip: Option<&str>) -> Shape {
        let mut props: Vec<(String, &Value)> = Vec::new();
        let mut required = BTreeSet::new();
        self.collect_properties(schema, &mut props, &mut required, 0);
        let resolved = self.resolve(schema);
        let mut fields = Vec::new();
        for (wire, prop) in props {
            if skip == Some(wire.as_str()) {
                continue;
            }
            let hint = format!("{type_name}{}", pascal(&wire));
            self.property = true;
            self.rfc3339 = false;
            let ty = self.ty(prop, &hint);
            let rfc3339 = std::mem::take(&mut self.rfc3339);
            let resolved_prop = self.resolve(prop);
            let nullable = prop.as_object().is_some_and(|o| strip_null(o).is_some());
            let is_required = required.contains(&wire);
            let checks = self.value_checks(prop, 1);
            let default = if is_required {
                None
            } else {
                self.default_expr(prop, &ty)
            };
            fields.push(Field {
                checks,
                default,
                require_present: is_required && nullable && !rfc3339 && self.opts.validate,
                required: is_required,
                docs: doc_or(
                    str_field(resolved_prop, "title").filter(|_| ref_target(prop).is_none()),
                    str_field(prop, "description")
                        .or_else(|| str_field(resolved_prop, "description")),
                    &format!("The `{}` property.", wire.replace('`', "'")),
                ),
                wire,
                ty,
                nullable,
                rfc3339,
            });
        }
        let additional = match resolved.get("additionalProperties") {
            Some(Value::Bool(false)) => Additional::Deny,
            Some(Value::Bool(true)) => {
                self.uses_map = true;
                Additional::Map(
                    quote!(::ruststream::reexports::serde_json::Value),
                    TokenStream::new(),
                )
            }
            Some(v @ Value::Object(_)) => {
                let saved = self.root.take();
                let ty = self.ty(v, &format!("{type_name}Value"));
                self.root = saved;
                self.uses_map = true;
                Additional::Map(ty, self.value_checks(v, 1))
            }
            _ => Additional::Ignore,
        };
        let mut count_checks = TokenStream::new();
        if let (Some(obj), true) = (resolved.as_object(), self.opts.validate) {
            validate::object_count_checks(obj, quote!(count), &mut count_checks);
        }
        Shape {
            fields,
            additional,
            count_checks,
        }
    }

    fn define_struct(
        &mut self,
        id: &syn::Ident,
        shape: Shape,
        docs: TokenStream,
        attrs: TokenStream,
    ) -> TypeItem {
        let mut scope = Scope::with_reserved(&["additional_properties"]);
        let all_optional = shape.fields.iter().all(|f| !f.required);
        let any_default = shape.fields.iter().any(|f| f.default.is_some());
        let mut fields = render_fields(shape.fields.iter(), &mut scope, true, Some(id));
        let mut container = Vec::new();
        match &shape.additional {
            Additional::Deny => container.push(quote!(#[serde(deny_unknown_fields)])),
            Additional::Map(ty, _) => fields.push(quote! {
                /// Properties not listed in the schema.
                #[serde(flatten)]
                pub additional_properties: ::std::collections::BTreeMap<::std::string::String, #ty>,
            }),
            Additional::Ignore => {}
        }
        let default = if all_optional && !any_default {
            quote!(Default,)
        } else {
            quote!()
        };
        let extra = self.struct_impls(id, &shape, all_optional);
        self.extra.extend(extra);
        TypeItem::Braced {
            head: quote! {
                #docs
                #[derive(Debug, Clone, PartialEq, #default ::ruststream::reexports::serde::Serialize, ::ruststream::reexports::serde::Deserialize)]
                #[serde(crate = "::ruststream::reexports::serde")]
                #(#container)*
                #attrs
                pub struct #id
            },
            members: fields,
            kind: BracedKind::Struct,
        }
    }
}

/// The default function of a field: `default_<field>`.
fn default_fn(fid: &syn::Ident) -> syn::Ident {
    format_ident!("default_{}", fid.to_string().trim_start_matches("r#"))
}

/// Fields with a `default` get it (not `Option`) when `owner`, the struct, is given.
fn render_fields<'f>(
    fields: impl Iterator<Item = &'f Field>,
    scope: &mut Scope,
    public: bool,
    owner: Option<&syn::Ident>,
) -> Vec<TokenStream> {
    fields
        .map(|f| {
            let name = scope.claim(&snake(&f.wire));
            let fid = ident(&name);
            if let (Some(owner), Some(_), false) = (owner, &f.default, f.required) {
                let ty = &f.ty;
                let path = format!("{owner}::{}", default_fn(&fid));
                let rename = if fid.to_string().trim_start_matches("r#") != f.wire {
                    let wire = &f.wire;
                    quote!(#[serde(rename = #wire)])
                } else {
                    quote!()
                };
                let docs = &f.docs;
                let vis = if public { quote!(pub) } else { quote!() };
                return quote! {
                    #docs
                    #rename
                    #[serde(default = #path)]
                    #vis #fid: #ty,
                };
            }
            let wire = &f.wire;
            let rename = if fid.to_string().trim_start_matches("r#") != wire {
                quote!(#[serde(rename = #wire)])
            } else {
                quote!()
            };
            let ty = &f.ty;
            let (ty, extra) = if f.required || f.nullable {
                (quote!(#ty), quote!())
            } else {
                (
                    quote!(::core::option::Option<#ty>),
                    quote!(#[serde(default, skip_serializing_if = "Option::is_none")]),
                )
            };
            let extra = if !f.required && f.nullable {
                quote!(#[serde(default, skip_serializing_if = "Option::is_none")])
            } else {
                extra
            };
            let with = match (f.rfc3339, f.required && !f.nullable) {
                (false, _) if f.require_present => {
                    // Without it serde takes an absent `Option` field for `null`.
                    quote!(#[serde(deserialize_with = "::ruststream::reexports::serde::Deserialize::deserialize")])
                }
                (false, _) => quote!(),
                (true, true) => quote!(#[serde(with = "::time::serde::rfc3339")]),
                (true, false) => quote!(#[serde(with = "::time::serde::rfc3339::option")]),
            };
            let docs = &f.docs;
            let vis = if public { quote!(pub) } else { quote!() };
            quote! {
                #docs
                #rename
                #extra
                #with
                #vis #fid: #ty,
            }
        })
        .collect()
}

fn integer_type(obj: &Map<String, Value>) -> TokenStream {
    match obj.get("format").and_then(Value::as_str) {
        Some("int8") => quote!(i8),
        Some("int16") => quote!(i16),
        Some("int32") => quote!(i32),
        Some("uint8") => quote!(u8),
        Some("uint16") => quote!(u16),
        Some("uint32") => quote!(u32),
        Some("uint64") => quote!(u64),
        _ => quote!(i64),
    }
}

/// If the schema admits `null` besides something else, the schema without `null`.
fn strip_null(obj: &Map<String, Value>) -> Option<Value> {
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        let mut inner = obj.clone();
        inner.remove("nullable");
        return Some(Value::Object(inner));
    }
    if let Some(types) = obj.get("type").and_then(Value::as_array) {
        let non_null: Vec<&Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .collect();
        if non_null.len() < types.len() && !non_null.is_empty() {
            let mut inner = obj.clone();
            if let [single] = non_null.as_slice() {
                inner.insert("type".into(), (*single).clone());
            } else {
                inner.insert(
                    "type".into(),
                    Value::Array(non_null.into_iter().cloned().collect()),
                );
            }
            return Some(Value::Object(inner));
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = obj.get(key).and_then(Value::as_array) {
            let non_null: Vec<Value> = variants
                .iter()
                .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
                .cloned()
                .collect();
            if non_null.len() < variants.len() && !non_null.is_empty() {
                let mut inner = obj.clone();
                if let [single] = non_null.as_slice() {
                    inner.remove(key);
                    let mut merged = single.clone();
                    if let (Some(m), true) = (merged.as_object_mut(), !inner.is_empty()) {
                        for (k, v) in inner {
                            m.entry(k).or_insert(v);
                        }
                    }
                    return Some(merged);
                }
                inner.insert(key.into(), Value::Array(non_null));
                return Some(Value::Object(inner));
            }
        }
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        if values.iter().any(Value::is_null) && values.iter().any(|v| !v.is_null()) {
            let mut inner = obj.clone();
            inner.insert(
                "enum".into(),
                Value::Array(values.iter().filter(|v| !v.is_null()).cloned().collect()),
            );
            return Some(Value::Object(inner));
        }
    }
    None
}

/// The string values when the schema is a (non-empty) enum of strings.
fn string_enum(obj: &Map<String, Value>) -> Option<Vec<String>> {
    let values = obj.get("enum")?.as_array()?;
    if values.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for v in values {
        let s = v.as_str()?.to_owned();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Some(out)
}

/// The single string value a property schema allows (`const` or a one-value `enum`).
fn single_value(schema: &Value) -> Option<String> {
    if let Some(c) = schema.get("const").and_then(Value::as_str) {
        return Some(c.to_owned());
    }
    match schema.get("enum").and_then(Value::as_array)?.as_slice() {
        [single] => single.as_str().map(str::to_owned),
        _ => None,
    }
}

fn is_objectish(obj: &Map<String, Value>) -> bool {
    obj.get("type").and_then(Value::as_str) == Some("object")
        || obj.contains_key("properties")
        || obj.contains_key("additionalProperties")
        || obj.contains_key("patternProperties")
}

/// Does this (non-ref, non-null) schema need a named item of its own?
fn needs_definition(obj: &Map<String, Value>) -> bool {
    if string_enum(obj).is_some() {
        return true;
    }
    if obj
        .get("oneOf")
        .and_then(Value::as_array)
        .is_some_and(|v| !v.is_empty())
        || obj
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|v| !v.is_empty())
    {
        return true;
    }
    if obj
        .get("allOf")
        .and_then(Value::as_array)
        .is_some_and(|v| v.len() > 1)
    {
        return true;
    }
    obj.contains_key("properties")
        || (obj.get("additionalProperties") == Some(&Value::Bool(false)) && is_objectish(obj))
}

/// Does [`TypeGen::define_item`] make this schema a type alias (not a struct or enum)?
fn is_alias(schema: &Value) -> bool {
    let Some(obj) = schema.as_object() else {
        return true;
    };
    if ref_target(schema).is_some() || strip_null(obj).is_some() {
        return true;
    }
    !(string_enum(obj).is_some()
        || obj.get("oneOf").and_then(Value::as_array).is_some()
        || obj.get("anyOf").and_then(Value::as_array).is_some()
        || obj.contains_key("properties")
        || obj
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|parts| parts.len() > 1)
        || (obj.get("additionalProperties") == Some(&Value::Bool(false)) && is_objectish(obj)))
}

/// Component names an alias's type mentions: every `$ref` in it, except inside inline schemas
/// that get a named type of their own (those are nominal and break a cycle of aliases).
fn alias_refs(schema: &Value, out: &mut BTreeSet<String>, depth: usize) {
    if depth > MAX_TYPE_DEPTH {
        return;
    }
    match schema {
        Value::Object(obj) => {
            if let Some(target) = ref_target(schema) {
                out.insert(target.to_owned());
            }
            if depth > 0 && strip_null(obj).is_none() && needs_definition(obj) {
                return;
            }
            for (k, v) in obj {
                if !matches!(
                    k.as_str(),
                    "enum" | "const" | "default" | "examples" | "example"
                ) {
                    alias_refs(v, out, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                alias_refs(v, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Component names a schema contains directly (not through arrays or maps).
fn direct_refs(schema: &Value, out: &mut BTreeSet<String>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if let Some(target) = ref_target(schema) {
        out.insert(target.to_owned());
        return;
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for p in props.values() {
            direct_refs(p, out);
        }
    }
    for key in ["oneOf", "anyOf", "allOf", "prefixItems"] {
        if let Some(parts) = obj.get(key).and_then(Value::as_array) {
            for p in parts {
                direct_refs(p, out);
            }
        }
    }
    if let Some(parts) = obj.get("items").and_then(Value::as_array) {
        for p in parts {
            direct_refs(p, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(schemas: Value) -> String {
        let schemas: BTreeMap<String, Value> = serde_json::from_value(schemas).unwrap();
        let opts = TypeOptions::default();
        let mut g = TypeGen::new(&schemas, &opts, Scope::default());
        g.generate_components();
        let (items, _) = g.finish();
        let items = items.into_iter().map(TypeItem::into_tokens);
        let file: syn::File = syn::parse2(quote!(#(#items)*)).unwrap();
        prettyplease::unparse(&file)
    }

    #[test]
    fn boxes_only_containment_cycles() {
        let out = render(json!({
            "Node": {"type": "object", "properties": {
                "next": {"$ref": "#/components/schemas/Node"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
            }}
        }));
        assert!(
            out.contains("pub next: Option<::std::boxed::Box<Node>>")
                || out.contains("Option<::std::boxed::Box<Node>>"),
            "{out}"
        );
        assert!(out.contains("::std::vec::Vec<Node>"), "{out}");
    }

    #[test]
    fn tagged_one_of_from_const() {
        let out = render(json!({
            "Pet": {"oneOf": [
                {"$ref": "#/components/schemas/Cat"},
                {"$ref": "#/components/schemas/Dog"}
            ]},
            "Cat": {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "cat"}, "meow": {"type": "boolean"}}},
            "Dog": {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "dog"}}}
        }));
        assert!(out.contains("#[serde(tag = \"kind\")]"), "{out}");
        assert!(out.contains("#[serde(rename = \"cat\")]"), "{out}");
    }
}
