//! Turning a resolved AsyncAPI 2.x or 3.x document into the one [`Document`] model.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use crate::model::*;
use crate::resolve::{Ctx, Node};
use crate::schemas::Schemas;

mod v2;
mod v3;

/// The `asyncapi` versions this crate reads.
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0", "3.0.0", "3.1.0",
];

/// The content type used when neither the message nor the document names one.
pub const FALLBACK_CONTENT_TYPE: &str = "application/json";

/// Normalises the main document; `None` when it cannot be read at all.
pub(crate) fn normalize(ctx: &mut Ctx<'_>, root: Node) -> Option<Document> {
    if !root.value().is_object() {
        ctx.error_hint(
            &root.loc(),
            format!(
                "an AsyncAPI document must be a mapping at the top level, found {}",
                kind(root.value())
            ),
            "start the document with `asyncapi: 3.0.0`",
        );
        return None;
    }
    let version = match root.value().get("asyncapi") {
        None => {
            ctx.error_hint(
                &root.loc(),
                "missing `asyncapi` version field",
                "start the document with `asyncapi: 3.0.0`",
            );
            return None;
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            ctx.error_hint(
                &root.loc_of("asyncapi"),
                format!("`asyncapi` must be a string, found {}", kind(other)),
                "quote the version: `asyncapi: '3.0.0'`",
            );
            return None;
        }
    };
    if !SUPPORTED_VERSIONS.contains(&version.as_str()) {
        ctx.error_hint(
            &root.loc_of("asyncapi"),
            format!("unsupported AsyncAPI version `{version}`"),
            &format!("supported versions: {}", SUPPORTED_VERSIONS.join(", ")),
        );
        return None;
    }
    let mut n = Norm {
        ctx,
        schemas: Schemas::default(),
        schemes: Vec::new(),
    };
    if let Some(s) = root.child("components").and_then(|c| c.child("schemas")) {
        n.schemas.add_components(n.ctx, &s);
    }
    let mut doc = if version.starts_with('2') {
        v2::normalize(&mut n, &root)
    } else {
        v3::normalize(&mut n, &root)
    };
    doc.source_version = version;
    doc.id = n.str(&root, "id");
    doc.default_content_type = n.str(&root, "defaultContentType");
    doc.extensions = extensions(&root);
    doc.source = root.loc();
    n.schemas.finish(n.ctx);
    doc.schemas = std::mem::take(&mut n.schemas.out);
    doc.security_schemes = std::mem::take(&mut n.schemes);
    Some(doc)
}

/// A word for the JSON type of `v`, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// `x-` extensions of an object.
pub(crate) fn extensions(node: &Node) -> BTreeMap<String, Value> {
    match node.value() {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| k.starts_with("x-"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Makes an identifier valid as a components key (`[A-Za-z0-9_.-]+`).
pub(crate) fn sanitize_id(raw: &str) -> String {
    crate::schemas::sanitize_name(raw)
}

/// Picks `base`, or `base2`, `base3`… whichever is not in `used`, and records it.
pub(crate) fn unique(used: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while used.contains(&name) {
        name = format!("{base}{n}");
        n += 1;
    }
    used.insert(name.clone());
    name
}

/// Known fields of each object, per major version (for unknown-field warnings).
pub(crate) mod fields {
    pub const ROOT_V3: &[&str] = &[
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    ];
    pub const ROOT_V2: &[&str] = &[
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "components",
        "tags",
        "externalDocs",
    ];
    pub const SERVER_V3: &[&str] = &[
        "host",
        "protocol",
        "protocolVersion",
        "pathname",
        "description",
        "title",
        "summary",
        "variables",
        "security",
        "tags",
        "externalDocs",
        "bindings",
    ];
    pub const SERVER_V2: &[&str] = &[
        "url",
        "protocol",
        "protocolVersion",
        "description",
        "variables",
        "security",
        "tags",
        "bindings",
    ];
    pub const CHANNEL_V3: &[&str] = &[
        "address",
        "messages",
        "title",
        "summary",
        "description",
        "servers",
        "parameters",
        "tags",
        "externalDocs",
        "bindings",
    ];
    pub const CHANNEL_V2: &[&str] = &[
        "description",
        "servers",
        "subscribe",
        "publish",
        "parameters",
        "bindings",
    ];
    pub const OPERATION_V3: &[&str] = &[
        "action",
        "channel",
        "title",
        "summary",
        "description",
        "security",
        "tags",
        "externalDocs",
        "bindings",
        "traits",
        "messages",
        "reply",
    ];
    pub const OPERATION_V2: &[&str] = &[
        "operationId",
        "summary",
        "description",
        "security",
        "tags",
        "externalDocs",
        "bindings",
        "traits",
        "message",
    ];
    pub const MESSAGE_V3: &[&str] = &[
        "headers",
        "payload",
        "correlationId",
        "contentType",
        "name",
        "title",
        "summary",
        "description",
        "tags",
        "externalDocs",
        "bindings",
        "examples",
        "traits",
    ];
    pub const MESSAGE_V2: &[&str] = &[
        "messageId",
        "headers",
        "payload",
        "correlationId",
        "schemaFormat",
        "contentType",
        "name",
        "title",
        "summary",
        "description",
        "tags",
        "externalDocs",
        "bindings",
        "examples",
        "traits",
    ];
}

/// Edit distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Normalisation state shared by both versions.
pub(crate) struct Norm<'c, 'o> {
    pub ctx: &'c mut Ctx<'o>,
    pub schemas: Schemas,
    pub schemes: Vec<SecurityScheme>,
}

impl Norm<'_, '_> {
    /// Warns about fields of `node` that are neither in `known` nor `x-` extensions.
    pub fn known_fields(&mut self, node: &Node, what: &str, known: &[&str]) {
        let Value::Object(m) = node.value() else {
            return;
        };
        for key in m.keys() {
            if key.starts_with("x-") || known.contains(&key.as_str()) {
                continue;
            }
            let mut d = crate::Diagnostic::warning(
                &node.loc_of(key),
                format!("unknown field `{key}` in {what} is ignored"),
            );
            if let Some(best) = known
                .iter()
                .filter(|k| distance(k, key) <= 2)
                .min_by_key(|k| distance(k, key))
            {
                d = d.with_hint(format!("did you mean `{best}`?"));
            }
            self.ctx.diags.push(d);
        }
    }

    /// Follows references.
    pub fn deref(&mut self, node: &Node) -> Option<Node> {
        self.ctx.deref(node)
    }

    /// The child `key`, references followed.
    pub fn child(&mut self, node: &Node, key: &str) -> Option<Node> {
        let c = node.child(key)?;
        if c.value().is_null() {
            return None;
        }
        self.deref(&c)
    }

    /// An optional string field; other types are reported.
    pub fn str(&mut self, node: &Node, key: &str) -> Option<String> {
        match node.value().get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => {
                let msg = format!("`{key}` must be a string, found {}", kind(other));
                self.ctx.error(&node.loc_of(key), msg);
                None
            }
        }
    }

    /// A required string field; absence and other types are reported.
    pub fn req_str(&mut self, node: &Node, key: &str, what: &str) -> String {
        if node.value().get(key).is_none() {
            self.ctx.error_hint(
                &node.loc(),
                format!("{what} is missing the required field `{key}`"),
                &format!("add `{key}:`"),
            );
            return String::new();
        }
        self.str(node, key).unwrap_or_default()
    }

    /// The entries of an object field (references followed for each value); a non-object
    /// is reported.
    pub fn entries(&mut self, node: &Node, key: &str) -> Vec<(String, Node, Node)> {
        let Some(c) = node.child(key) else {
            return Vec::new();
        };
        let Some(c) = (if c.value().is_null() {
            None
        } else {
            self.deref(&c)
        }) else {
            return Vec::new();
        };
        if !c.value().is_object() {
            let msg = format!("`{key}` must be a mapping, found {}", kind(c.value()));
            self.ctx.error(&c.loc(), msg);
            return Vec::new();
        }
        let mut out = Vec::new();
        for (k, entry) in c.entries() {
            if k.starts_with("x-") && key != "schemas" {
                continue;
            }
            if let Some(target) = self.deref(&entry) {
                if !target.value().is_object() {
                    let msg = format!(
                        "`{key}.{k}` must be a mapping, found {}",
                        kind(target.value())
                    );
                    self.ctx.error(&target.loc(), msg);
                    continue;
                }
                out.push((k, entry, target));
            }
        }
        out
    }

    /// The items of a list field; a non-list is reported.
    pub fn items(&mut self, node: &Node, key: &str) -> Vec<Node> {
        let Some(c) = node.child(key) else {
            return Vec::new();
        };
        match c.value() {
            Value::Null => Vec::new(),
            Value::Array(_) => c.items(),
            other => {
                let msg = format!("`{key}` must be a list, found {}", kind(other));
                self.ctx.error(&c.loc(), msg);
                Vec::new()
            }
        }
    }

    /// A list of strings (non-string scalars are written as JSON).
    pub fn strings(&mut self, node: &Node, key: &str) -> Vec<String> {
        self.items(node, key)
            .into_iter()
            .map(|i| match i.value() {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    /// A scalar written as a string.
    pub fn scalar(&mut self, node: &Node, key: &str) -> Option<String> {
        match node.value().get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// `tags`.
    pub fn tags(&mut self, node: &Node) -> Vec<Tag> {
        let mut out: Vec<Tag> = Vec::new();
        for item in self.items(node, "tags") {
            let Some(t) = self.deref(&item) else { continue };
            if !t.value().is_object() {
                let msg = format!("a tag must be a mapping, found {}", kind(t.value()));
                self.ctx.error(&t.loc(), msg);
                continue;
            }
            if let Some(name) = t.value().get("name").and_then(Value::as_str) {
                if out.iter().any(|tag| tag.name == name) {
                    let msg = format!("duplicate tag name `{name}`");
                    let hint = "each tag of a list must have a unique name";
                    if self.ctx.version.starts_with('2') {
                        // The official parser's `asyncapi2-tags-uniqueness` rule.
                        self.ctx.error_hint(&t.loc_of("name"), msg, hint);
                    } else {
                        // 3.x requires it too, but the official parser does not check it.
                        let d = crate::Diagnostic::warning(
                            &t.loc_of("name"),
                            format!("{msg} (accepted, as by the official parser for 3.x)"),
                        )
                        .with_hint(hint);
                        self.ctx.diags.push(d);
                    }
                }
            }
            out.push(Tag {
                name: self.req_str(&t, "name", "a tag"),
                description: self.str(&t, "description"),
                external_docs: self.external_docs(&t),
            });
        }
        out
    }

    /// `externalDocs`.
    pub fn external_docs(&mut self, node: &Node) -> Option<ExternalDocs> {
        let d = self.child(node, "externalDocs")?;
        Some(ExternalDocs {
            url: self.req_str(&d, "url", "`externalDocs`"),
            description: self.str(&d, "description"),
        })
    }

    /// `bindings`: references followed, schema references rewritten.
    pub fn bindings(&mut self, node: &Node) -> Value {
        let Some(b) = self.child(node, "bindings") else {
            return Value::Null;
        };
        if !b.value().is_object() {
            let msg = format!("`bindings` must be a mapping, found {}", kind(b.value()));
            self.ctx.error(&b.loc(), msg);
            return Value::Null;
        }
        let mut out = Map::new();
        for (proto, entry) in b.entries() {
            let value = match self.deref(&entry) {
                Some(t) => self.schemas.rewrite(self.ctx, &t),
                None => entry.value().clone(),
            };
            out.insert(proto, value);
        }
        Value::Object(out)
    }

    /// `info`.
    pub fn info(&mut self, root: &Node) -> Info {
        let Some(i) = self.child(root, "info") else {
            self.ctx.error_hint(
                &root.loc(),
                "the document is missing the required field `info`",
                "add `info:` with `title:` and `version:`",
            );
            return Info::default();
        };
        if !i.value().is_object() {
            let msg = format!("`info` must be a mapping, found {}", kind(i.value()));
            self.ctx.error(&i.loc(), msg);
            return Info::default();
        }
        let contact = self.child(&i, "contact").map(|c| Contact {
            name: self.str(&c, "name"),
            url: self.str(&c, "url"),
            email: self.str(&c, "email"),
        });
        let license = self.child(&i, "license").map(|l| License {
            name: self.req_str(&l, "name", "`license`"),
            url: self.str(&l, "url"),
        });
        Info {
            title: self.req_str(&i, "title", "`info`"),
            version: self.req_str(&i, "version", "`info`"),
            description: self.str(&i, "description"),
            terms_of_service: self.str(&i, "termsOfService"),
            contact,
            license,
            tags: self.tags(&i),
            external_docs: self.external_docs(&i),
            extensions: extensions(&i),
            source: i.loc(),
        }
    }

    /// A correlation id object (references followed).
    pub fn correlation_id(&mut self, node: &Node) -> Option<CorrelationId> {
        let c = self.child(node, "correlationId")?;
        Some(CorrelationId {
            location: self.req_str(&c, "location", "`correlationId`"),
            description: self.str(&c, "description"),
            source: c.loc(),
        })
    }

    /// Server variables.
    pub fn server_variables(&mut self, server: &Node) -> Vec<ServerVariable> {
        self.entries(server, "variables")
            .into_iter()
            .map(|(name, _, v)| ServerVariable {
                name,
                enum_values: self.strings(&v, "enum"),
                default: self.scalar(&v, "default"),
                description: self.str(&v, "description"),
                examples: self.strings(&v, "examples"),
                source: v.loc(),
            })
            .collect()
    }

    /// A security scheme from a resolved node, registered once by name.
    pub fn register_scheme(&mut self, name: &str, node: &Node) {
        if self.schemes.iter().any(|s| s.name == name) {
            return;
        }
        let scheme = SecurityScheme {
            name: name.to_string(),
            scheme_type: self.req_str(node, "type", "a security scheme"),
            description: self.str(node, "description"),
            raw: node.value().clone(),
            source: node.loc(),
        };
        self.schemes.push(scheme);
    }

    /// Payload or headers schema: a multi-format object is unwrapped (its format returned),
    /// references rewritten.
    pub fn schema_field(&mut self, node: &Node, key: &str) -> (Option<Value>, Option<String>) {
        let Some(p) = node.child(key) else {
            return (None, None);
        };
        if p.value().is_null() {
            return (None, None);
        }
        if let (Some(fmt), Some(inner)) = (p.value().get("schemaFormat"), p.child("schema")) {
            let fmt = fmt.as_str().map(str::to_string);
            return (Some(self.schemas.rewrite(self.ctx, &inner)), fmt);
        }
        let mut fmt = None;
        if p.ref_str().is_some() {
            if let Some(t) = self.ctx.deref(&p) {
                if t.value().get("schema").is_some() {
                    fmt = t
                        .value()
                        .get("schemaFormat")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
            }
        }
        (Some(self.schemas.rewrite(self.ctx, &p)), fmt)
    }
}
