//! Validation against the official AsyncAPI JSON Schemas (draft-07, embedded from
//! `schemas/`), as the official parser does: the document as written (`$ref`s kept) and the
//! document with its `$ref`s replaced by what they point at (across files, cycles left as
//! references). Each complaint is located by following the instance path through the files.

use std::collections::HashSet;
use std::sync::OnceLock;

use jsonschema::output::BasicOutput;
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Location, unescape_pointer_segment};
use crate::resolve::{Ctx, Node, NodeId, Target};

/// The embedded schemas, by version.
const SCHEMAS: &[(&str, &str)] = &[
    ("2.0.0", include_str!("../schemas/2.0.0.json")),
    ("2.1.0", include_str!("../schemas/2.1.0.json")),
    ("2.2.0", include_str!("../schemas/2.2.0.json")),
    ("2.3.0", include_str!("../schemas/2.3.0.json")),
    ("2.4.0", include_str!("../schemas/2.4.0.json")),
    ("2.5.0", include_str!("../schemas/2.5.0.json")),
    ("2.6.0", include_str!("../schemas/2.6.0.json")),
    ("3.0.0", include_str!("../schemas/3.0.0.json")),
    ("3.1.0", include_str!("../schemas/3.1.0.json")),
];

/// Most values the resolved copy may hold; past it only the document as written is checked.
const MAX_RESOLVED_NODES: usize = 2_000_000;

/// Most complaints reported per document.
const MAX_REPORTED: usize = 50;

/// Validators of the document as written and as resolved, by version.
struct Validators {
    written: jsonschema::Validator,
    /// `None` when the same schema applies (2.x): one validator, compiled once.
    resolved: Option<jsonschema::Validator>,
}

impl Validators {
    fn resolved(&self) -> &jsonschema::Validator {
        self.resolved.as_ref().unwrap_or(&self.written)
    }
}

static VALIDATORS: [OnceLock<Option<Validators>>; 9] = [const { OnceLock::new() }; 9];

/// The compiled validators of `version`, built once per process.
fn validators(version: &str) -> Option<&'static Validators> {
    let index = SCHEMAS.iter().position(|(v, _)| *v == version)?;
    VALIDATORS[index]
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(&ascii_classes(SCHEMAS[index].1)).ok()?;
            let build = |schema: &Value| {
                jsonschema::draft7::options()
                    .should_validate_formats(false)
                    .build(schema)
                    .ok()
            };
            let written = build(&schema)?;
            let resolved = if version.starts_with('3') {
                Some(build(&resolved_schema(schema, version))?)
            } else {
                None
            };
            Some(Validators { written, resolved })
        })
        .as_ref()
}

/// The schemas' patterns use `\w` and `\d` inside character classes (`^x-[\w\d\.\x2d_]+$`,
/// on every object). In JavaScript (the official parser's Ajv) they are ASCII; in Rust's
/// `regex` they are Unicode classes, and the ~100 copies would cost ~150 MB of compiled
/// automata: written as the ASCII ranges they mean in JavaScript.
fn ascii_classes(schema: &str) -> String {
    schema.replace(r"\\w", "A-Za-z0-9_").replace(r"\\d", "0-9")
}

/// The 3.x schema for resolved documents, as the official parser prepares it: where 3.x
/// requires a Reference object (a channel's servers, an operation's or a reply's channel and
/// messages) the resolved document holds the object itself.
fn resolved_schema(mut schema: Value, version: &str) -> Value {
    let id = |name: &str| format!("http://asyncapi.com/definitions/{version}/{name}.json");
    let patches = [
        ("channel", "/properties/servers/items", "server"),
        ("operation", "/properties/channel", "channel"),
        ("operation", "/properties/messages/items", "messageObject"),
        ("operationReply", "/properties/channel", "channel"),
        (
            "operationReply",
            "/properties/messages/items",
            "messageObject",
        ),
    ];
    for (definition, at, target) in patches {
        let target = id(target);
        if let Some(Value::Object(slot)) = schema
            .get_mut("definitions")
            .and_then(|d| d.get_mut(id(definition)))
            .and_then(|d| d.pointer_mut(at))
        {
            slot.insert("$ref".to_string(), Value::String(target));
        }
    }
    schema
}

/// The message jsonschema gives when `$ref` is where no Reference object may be.
const REF_UNEXPECTED: &str = "'$ref' was unexpected";

/// One complaint: where (instance path, `/a/b`) and what.
struct Complaint {
    path: String,
    message: String,
}

/// The most specific complaints of a failed validation: the leaves of the official schema's
/// `oneOf`/`anyOf` branches (their "no branch matched" summaries and the "must be a
/// reference" complaints of the `Reference` branches dropped), and of those only the ones
/// that no other complaint is deeper than.
fn complaints(
    validator: &jsonschema::Validator,
    instance: &Value,
    written: bool,
) -> Vec<Complaint> {
    let BasicOutput::Invalid(units) = validator.apply(instance).basic() else {
        return Vec::new();
    };
    let mut all: Vec<Complaint> = Vec::new();
    let mut refs: Vec<Complaint> = Vec::new();
    for unit in units {
        let keyword = unit.keyword_location().to_string();
        let last = keyword.rsplit('/').next().unwrap_or_default();
        let message = unit.error_description().to_string();
        // "No branch matched" summaries: their branches' complaints say more. "More than one
        // matched" is a complaint of its own.
        if matches!(
            last,
            "oneOf" | "anyOf" | "allOf" | "if" | "then" | "else" | "not"
        ) && !message.contains("more than one")
        {
            continue;
        }
        if message.contains("\"$ref\" is a required property") {
            continue;
        }
        let mut path = unit.instance_location().to_string();
        if message.contains(REF_UNEXPECTED) {
            refs.push(Complaint {
                path: format!("{path}/$ref"),
                message: "referencing in this place is not allowed".to_string(),
            });
            continue;
        }
        if let Some(rest) = message.strip_prefix("Additional properties are not allowed ('") {
            // Located at the first unexpected property, as the official parser does.
            if let Some(end) = rest.find('\'') {
                path = format!(
                    "{path}/{}",
                    crate::diagnostic::escape_pointer_segment(&rest[..end])
                );
            }
        }
        all.push(Complaint { path, message });
    }
    if written {
        // As written, only misplaced references count (the official parser's rule).
        return refs;
    }
    let mut kept: Vec<Complaint> = Vec::new();
    for c in &all {
        let deeper = all
            .iter()
            .any(|o| o.path.len() > c.path.len() && o.path.starts_with(&format!("{}/", c.path)));
        if !deeper
            && !kept
                .iter()
                .any(|k| k.path == c.path && k.message == c.message)
        {
            kept.push(Complaint {
                path: c.path.clone(),
                message: shorten(&c.message),
            });
        }
    }
    if kept.is_empty() && !written {
        // Only summaries: report the document as a whole.
        kept.push(Complaint {
            path: String::new(),
            message: "the document does not match the official schema".to_string(),
        });
    }
    kept
}

/// jsonschema's messages quote the offending value; long values are cut.
fn shorten(message: &str) -> String {
    const MAX: usize = 200;
    if message.len() <= MAX {
        return message.to_string();
    }
    let mut cut = MAX;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &message[..cut])
}

/// Validates the main document (`root`, as written and resolved) against the official schema
/// of `version`; the errors, located in the files they come from.
pub(crate) fn validate(ctx: &mut Ctx<'_>, root: &Node, version: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(validators) = validators(version) else {
        return out;
    };
    let written = &shallow_schemas(root.value(), None);
    let mut found: Vec<Complaint> = Vec::new();
    if !validators.written.is_valid(written) {
        found.extend(complaints(&validators.written, written, true));
    }
    let mut budget = MAX_RESOLVED_NODES;
    let before = ctx.diags.len();
    let resolved = resolve_all(ctx, root, &mut Vec::new(), &mut budget, 0);
    // Problems with the references themselves are reported by the loader.
    ctx.diags.truncate(before);
    if let Some(resolved) = resolved {
        if !validators.resolved().is_valid(&resolved) {
            for c in complaints(validators.resolved(), &resolved, false) {
                if !found
                    .iter()
                    .any(|f| f.path == c.path && f.message == c.message)
                {
                    found.push(c);
                }
            }
        }
    }
    let mut seen = HashSet::new();
    for loc in std::mem::take(&mut ctx.multi_format_refs) {
        if seen.insert((loc.clone(), String::new())) {
            out.push(
                Diagnostic::error(
                    &loc,
                    format!("not valid by the official AsyncAPI {version} schema: a schema refers to this multi-format schema object (`schemaFormat` + `schema`), which is not a schema"),
                )
                .with_hint("refer to the inner `schema` (`…/schema`), or make this a plain schema"),
            );
        }
    }
    for c in found.into_iter().take(MAX_REPORTED) {
        let loc = ctx.locate(root, &c.path);
        if seen.insert((loc.clone(), c.message.clone())) {
            out.push(
                Diagnostic::error(
                    &loc,
                    format!("not valid by the official AsyncAPI {version} schema: {}", c.message),
                )
                .with_hint("the official AsyncAPI parser rejects this too; see the specification of this object"),
            );
        }
    }
    out
}

/// Merges the official schema's errors into the loader's diagnostics: an official error is
/// dropped where the loader already reports an error at or below its place (that one says
/// more), and where the loader only warned about unknown fields below it, those warnings
/// become errors (the official schema allows no other fields there) in its stead.
pub(crate) fn merge(official: Vec<Diagnostic>, diags: &mut Vec<Diagnostic>) {
    let under = |d: &Diagnostic, e: &Diagnostic| {
        d.file == e.file
            && (d.pointer == e.pointer
                || e.pointer == "#"
                || e.pointer.is_empty()
                || d.pointer.starts_with(&format!("{}/", e.pointer)))
    };
    for e in official {
        if diags.iter().any(|d| d.is_error() && under(d, &e)) {
            continue;
        }
        let mut promoted = false;
        if e.message.contains("unexpected") || e.message.contains("not allowed") {
            for d in diags.iter_mut() {
                if !d.is_error() && d.message.starts_with("unknown field") && under(d, &e) {
                    d.severity = crate::Severity::Error;
                    d.message = d
                        .message
                        .replace(" is ignored", " is not allowed by the official schema");
                    promoted = true;
                }
            }
        }
        if !promoted {
            diags.push(e);
        }
    }
}

/// How deep inside a schema the official schema checks it. `jsonschema` compiles the bundle's
/// recursive schema definition anew at every level of nesting (memory grows with the square
/// of the depth: 30 levels took 1.6 GB), so deeper parts of schemas are replaced by `{}`
/// (any value) for this check; RustStream's own schema handling still reads all of it.
const SCHEMA_CHECK_DEPTH: usize = 3;

/// `value` with every sub-schema nested more than [`SCHEMA_CHECK_DEPTH`] schemas deep replaced
/// by `{}` (a schema that accepts anything); `hops` is the nesting inside a schema (`None`: not
/// in one yet; schemas start at the keys of [`SCHEMA_KEYS`]). Schemas of another
/// `schemaFormat` (Avro, …) are left whole.
fn shallow_schemas(value: &Value, hops: Option<usize>) -> Value {
    let Value::Object(m) = value else {
        return value.clone();
    };
    let Some(h) = hops else {
        // Outside schemas: find where they start.
        let foreign = m
            .get("schemaFormat")
            .and_then(Value::as_str)
            .is_some_and(|f| !f.contains("asyncapi") && !f.contains("schema+"));
        return Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "examples" | "example" | "default" | "const" | "enum" => v.clone(),
                        "schema" if foreign => v.clone(),
                        "schemas" => match v {
                            Value::Object(all) => Value::Object(
                                all.iter()
                                    .map(|(n, s)| (n.clone(), shallow_schemas(s, Some(0))))
                                    .collect(),
                            ),
                            other => other.clone(),
                        },
                        "payload" | "headers" | "schema"
                            if !(v.get("schemaFormat").is_some() && v.get("schema").is_some()) =>
                        {
                            shallow_schemas(v, Some(0))
                        }
                        _ => shallow_schemas(v, None),
                    };
                    (k.clone(), v)
                })
                .collect(),
        );
    };
    let sub = |v: &Value| {
        if h + 1 > SCHEMA_CHECK_DEPTH && v.is_object() {
            Value::Object(Map::new())
        } else {
            shallow_schemas(v, Some(h + 1))
        }
    };
    Value::Object(
        m.iter()
            .map(|(k, v)| {
                let v = match (k.as_str(), v) {
                    (
                        "properties" | "patternProperties" | "definitions" | "$defs"
                        | "dependencies",
                        Value::Object(map),
                    ) => Value::Object(map.iter().map(|(n, s)| (n.clone(), sub(s))).collect()),
                    ("allOf" | "anyOf" | "oneOf" | "items", Value::Array(list)) => {
                        Value::Array(list.iter().map(&sub).collect())
                    }
                    (
                        "items"
                        | "additionalProperties"
                        | "additionalItems"
                        | "contains"
                        | "propertyNames"
                        | "not"
                        | "if"
                        | "then"
                        | "else",
                        s,
                    ) => sub(s),
                    (_, other) => other.clone(),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// [`shallow_schemas`] of `value` found under `key` (one of [`SCHEMA_KEYS`]).
fn shallow_under(key: &str, value: &Value) -> Value {
    let mut wrapper = Map::new();
    wrapper.insert(key.to_string(), value.clone());
    match shallow_schemas(&Value::Object(wrapper), None) {
        Value::Object(mut m) => m.remove(key).unwrap_or(Value::Null),
        other => other,
    }
}

/// Keys below which the value is a schema (JSON Schema keeps its `$ref`s: schemas are checked
/// where they are defined, and copying them resolved would multiply the document).
const SCHEMA_KEYS: &[&str] = &["payload", "headers", "schema", "schemas"];

/// A copy of `node`'s value with every `$ref` replaced by its target's (resolved) value,
/// schemas aside; a reference back into a value being resolved is kept as written (a cycle),
/// and so are refs that do not resolve. `None` when the copy would exceed `budget` values.
fn resolve_all(
    ctx: &mut Ctx<'_>,
    node: &Node,
    stack: &mut Vec<NodeId>,
    budget: &mut usize,
    depth: usize,
) -> Option<Value> {
    *budget = budget.checked_sub(1)?;
    if depth > 256 {
        return Some(node.value().clone());
    }
    let value = node.value();
    if let Some(r) = node.ref_str().map(str::to_owned) {
        let id = node.id();
        if stack.contains(&id) || stack.len() > 64 {
            return Some(value.clone());
        }
        return match ctx.resolve_ref(node, &r) {
            Some(Target::Found(target)) => {
                if stack.contains(&target.id()) {
                    return Some(value.clone());
                }
                stack.push(id);
                let out = resolve_all(ctx, &target, stack, budget, depth + 1);
                stack.pop();
                out
            }
            _ => Some(value.clone()),
        };
    }
    match value {
        Value::Object(m) => {
            let id = node.id();
            stack.push(id);
            let mut out = Map::with_capacity(m.len());
            for (key, child) in node.entries() {
                // Examples and defaults are data: never resolved.
                let v = if matches!(
                    key.as_str(),
                    "examples" | "example" | "default" | "const" | "enum"
                ) {
                    child.value().clone()
                } else if key == "schemas" {
                    shallow_under("schemas", child.value())
                } else if SCHEMA_KEYS.contains(&key.as_str()) {
                    // The schema itself may be a reference (checked where it lands); the
                    // references inside it are kept.
                    let schema = ctx.deref(&child).unwrap_or(child);
                    *budget = budget.checked_sub(1)?;
                    multi_format_refs(ctx, &schema, 0);
                    shallow_under(&key, schema.value())
                } else {
                    match resolve_all(ctx, &child, stack, budget, depth + 1) {
                        Some(v) => v,
                        None => {
                            stack.pop();
                            return None;
                        }
                    }
                };
                out.insert(key, v);
            }
            stack.pop();
            Some(Value::Object(out))
        }
        Value::Array(_) => {
            let mut out = Vec::new();
            for item in node.items() {
                out.push(resolve_all(ctx, &item, stack, budget, depth + 1)?);
            }
            Some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// Inside a schema, a `$ref` to a multi-format schema object (`schemaFormat` + `schema`) puts
/// that wrapper where a schema must be: the official parser (on the resolved document)
/// rejects it. Found without copying the schema; recorded as complaints on the context.
fn multi_format_refs(ctx: &mut Ctx<'_>, node: &Node, depth: usize) {
    if depth > 64 {
        return;
    }
    let value = node.value();
    if depth > 0 {
        if let Some(r) = node.ref_str().map(str::to_owned) {
            if let Some(Target::Found(target)) = ctx.resolve_ref(node, &r) {
                let v = target.value();
                if v.get("schemaFormat").is_some() && v.get("schema").is_some() {
                    ctx.multi_format_refs.push(target.loc_of("schemaFormat"));
                }
            }
            return;
        }
    }
    // A multi-format wrapper at the top: its schema is what counts.
    if depth == 0 && value.get("schemaFormat").is_some() {
        if let Some(inner) = node.child("schema") {
            multi_format_refs(ctx, &inner, 1);
        }
        return;
    }
    match value {
        Value::Object(m) => {
            for key in m.keys() {
                if !matches!(
                    key.as_str(),
                    "examples" | "example" | "default" | "const" | "enum"
                ) {
                    if let Some(child) = node.child(key) {
                        multi_format_refs(ctx, &child, depth + 1);
                    }
                }
            }
        }
        Value::Array(_) => {
            for item in node.items() {
                multi_format_refs(ctx, &item, depth + 1);
            }
        }
        _ => {}
    }
}

impl Ctx<'_> {
    /// The location of the instance path `path` (`/a/b`, unescaped segments escaped as in a
    /// pointer) of the resolved document rooted at `root`: the `$ref`s met on the way are
    /// followed, into other files too.
    pub(crate) fn locate(&mut self, root: &Node, path: &str) -> Location {
        let before = self.diags.len();
        let segments: Vec<String> = path
            .split('/')
            .skip(1)
            .map(unescape_pointer_segment)
            .collect();
        let found = self.follow_segments(root.clone(), &segments);
        self.diags.truncate(before);
        match found {
            Ok(node) => node.loc(),
            Err(last) => last.loc(),
        }
    }
}

/// The parsed official schema of `version`, once per process.
fn schema_value(version: &str) -> Option<&'static Value> {
    static VALUES: [OnceLock<Option<Value>>; 9] = [const { OnceLock::new() }; 9];
    let index = SCHEMAS.iter().position(|(v, _)| *v == version)?;
    VALUES[index]
        .get_or_init(|| serde_json::from_str(&ascii_classes(SCHEMAS[index].1)).ok())
        .as_ref()
}

/// `bindings` (of a `server`, `channel`, `operation` or `message`) made to fit the official
/// schema of `version` while keeping their meaning: for each protocol the schema knows, a
/// `bindingVersion` it does not accept is dropped (the latest binding applies), and fields
/// that binding does not define are converted (an HTTP operation's `type: request`, implied
/// since HTTP binding 0.2.0, is dropped) or kept as `x-<field>` extensions.
pub(crate) fn fit_bindings(bindings: &Value, object: &str, version: &str) -> Value {
    let (Some(schema), Value::Object(all)) = (schema_value(version), bindings) else {
        return bindings.clone();
    };
    let definitions = schema.get("definitions");
    let id = |name: &str| format!("http://asyncapi.com/definitions/{version}/{name}.json");
    let Some(protocols) = definitions
        .and_then(|d| d.get(id(&format!("{object}BindingsObject"))))
        .and_then(|b| b.get("properties"))
    else {
        return bindings.clone();
    };
    let mut out = Map::new();
    for (protocol, binding) in all {
        let (Some(rule), Value::Object(fields)) = (protocols.get(protocol), binding) else {
            out.insert(protocol.clone(), binding.clone());
            continue;
        };
        let accepted: Vec<&str> = rule
            .pointer("/properties/bindingVersion/enum")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = fields.clone();
        let written = fields
            .get("bindingVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let version_used = match written {
            Some(v) if accepted.contains(&v.as_str()) => Some(v),
            Some(_) => {
                fields.remove("bindingVersion");
                None
            }
            None => None,
        };
        // The binding schema that applies: the version written, else the latest.
        let target = rule
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|branches| {
                branches.iter().find_map(|b| {
                    let matches = match &version_used {
                        Some(v) => {
                            b.pointer("/if/properties/bindingVersion/const")
                                == Some(&Value::String(v.clone()))
                        }
                        None => b.pointer("/if/not").is_some(),
                    };
                    if matches {
                        b.pointer("/then/$ref").and_then(Value::as_str)
                    } else {
                        None
                    }
                })
            });
        let binding_schema = target.and_then(|t| definitions.and_then(|d| d.get(t)));
        let Some(binding_schema) = binding_schema else {
            out.insert(protocol.clone(), Value::Object(fields));
            continue;
        };
        if binding_schema.get("additionalProperties") != Some(&Value::Bool(false)) {
            out.insert(protocol.clone(), Value::Object(fields));
            continue;
        }
        let known = binding_schema.get("properties").and_then(Value::as_object);
        let mut fitted = Map::new();
        if protocol == "amqp" && object == "channel" {
            // AMQP 0.3.0 requires the object its `is` names (0.1.0/0.2.0 did not).
            let needed = match fields.get("is").and_then(Value::as_str) {
                Some("queue") => "queue",
                _ => "exchange",
            };
            fields
                .entry(needed)
                .or_insert_with(|| Value::Object(Map::new()));
        }
        for (k, v) in fields {
            let is_schema = known
                .and_then(|p| p.get(&k))
                .and_then(|p| p.get("$ref"))
                .and_then(Value::as_str)
                .is_some_and(|r| r.ends_with("/schema.json"));
            if is_schema && !v.is_object() && !v.is_boolean() {
                // Kafka 0.1.0's `groupId: my-group` (a value) is a schema since 0.2.0: the
                // schema of exactly that value.
                let mut schema = Map::new();
                if let Some(t) = match &v {
                    Value::String(_) => Some("string"),
                    Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
                    Value::Number(_) => Some("number"),
                    _ => None,
                } {
                    schema.insert("type".to_string(), Value::String(t.to_string()));
                }
                schema.insert("enum".to_string(), Value::Array(vec![v]));
                fitted.insert(k, Value::Object(schema));
            } else if k.starts_with("x-") || known.is_some_and(|p| p.contains_key(&k)) {
                fitted.insert(k, v);
            } else if protocol == "http" && object == "operation" && k == "type" && v == "request" {
                // HTTP binding 0.1.0's `type: request` is what every HTTP operation is since 0.2.0.
            } else {
                fitted.entry(format!("x-{k}")).or_insert(v);
            }
        }
        out.insert(protocol.clone(), Value::Object(fitted));
    }
    Value::Object(out)
}

/// The official parser's `asyncapi2-message-examples` rule (2.x only): each example's
/// `payload` and `headers` must match the message's schemas (messages without a
/// `schemaFormat`, i.e. AsyncAPI schemas).
pub(crate) fn message_examples(doc: &crate::Document) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if !doc.source_version.starts_with('2') {
        return out;
    }
    let table = Value::Object(
        doc.schemas
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    for m in &doc.messages {
        if m.examples.is_empty() || m.schema_format.is_some() {
            continue;
        }
        for (part, schema) in [("payload", &m.payload), ("headers", &m.headers)] {
            let Some(schema) = schema else { continue };
            let mut root = Map::new();
            root.insert("allOf".to_string(), Value::Array(vec![schema.clone()]));
            root.insert(
                "components".to_string(),
                serde_json::json!({ "schemas": table }),
            );
            let Ok(validator) = jsonschema::draft7::options()
                .should_validate_formats(false)
                .build(&Value::Object(root))
            else {
                continue;
            };
            for (i, example) in m.examples.iter().enumerate() {
                let Some(value) = example.get(part) else {
                    continue;
                };
                if let Some(e) = validator.iter_errors(value).next() {
                    let mut loc = m.source.clone();
                    loc.pointer = format!("{}/examples/{i}/{part}", loc.pointer);
                    out.push(
                        Diagnostic::error(
                            &loc,
                            format!(
                                "example {i} of message `{}` does not match its {part} schema: {} (at `{}`)",
                                m.id,
                                shorten(&e.to_string()),
                                e.instance_path
                            ),
                        )
                        .with_hint("the official parser checks 2.x examples against the schemas (asyncapi2-message-examples)"),
                    );
                }
            }
        }
    }
    out
}
