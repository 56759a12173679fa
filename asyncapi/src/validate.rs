//! Semantic checks on the normalised model that JSON Schema cannot express.

use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Location};
use crate::model::Document;

/// Schema formats this crate recognises (media type without `;version=`).
const KNOWN_SCHEMA_FORMATS: &[&str] = &[
    "application/vnd.aai.asyncapi",
    "application/vnd.aai.asyncapi+json",
    "application/vnd.aai.asyncapi+yaml",
    "application/schema+json",
    "application/schema+yaml",
    "application/vnd.apache.avro",
    "application/vnd.apache.avro+json",
    "application/vnd.apache.avro+yaml",
    "application/vnd.oai.openapi",
    "application/vnd.oai.openapi+json",
    "application/vnd.oai.openapi+yaml",
    "application/raml+yaml",
    "application/vnd.google.protobuf",
];

/// The `{name}`s of an address template, in order; `Err` with a message when braces do not
/// pair up.
pub(crate) fn address_parameters(address: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = address;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("unmatched `}}` in address `{address}`"));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("unclosed `{{` in address `{address}`"));
        };
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            return Err(format!("malformed parameter in address `{address}`"));
        }
        out.push(name.to_string());
        rest = &after[close + 1..];
    }
    Ok(out)
}

/// `true` when `expr` is a runtime expression `$message.header#/…` or `$message.payload#/…`.
pub(crate) fn is_runtime_expression(expr: &str) -> bool {
    let rest = match expr
        .strip_prefix("$message.header")
        .or_else(|| expr.strip_prefix("$message.payload"))
    {
        Some(r) => r,
        None => return false,
    };
    rest.is_empty() || rest == "#" || rest.starts_with("#/")
}

fn at(loc: &Location, suffix: &str) -> Location {
    let mut l = loc.clone();
    if !suffix.is_empty() {
        l.pointer = format!("{}/{suffix}", l.pointer);
    }
    l
}

/// Runs every check, appending diagnostics.
pub(crate) fn validate(doc: &Document, diags: &mut Vec<Diagnostic>) {
    for server in &doc.servers {
        let mut used = Vec::new();
        for part in std::iter::once(&server.host).chain(server.pathname.as_ref()) {
            match address_parameters(part) {
                Ok(names) => used.extend(names),
                Err(m) => diags.push(Diagnostic::error(&server.source, m)),
            }
        }
        for name in &used {
            if !server.variables.iter().any(|v| &v.name == name) {
                diags.push(
                    Diagnostic::error(
                        &server.source,
                        format!(
                            "server `{}` uses variable `{{{name}}}` but does not define it",
                            server.name
                        ),
                    )
                    .with_hint(format!(
                        "add `variables: {{ {name}: {{ default: ... }} }}` to the server"
                    )),
                );
            }
        }
        for v in &server.variables {
            if !used.contains(&v.name) {
                diags.push(Diagnostic::warning(
                    &v.source,
                    format!(
                        "server `{}` defines variable `{}` that it does not use",
                        server.name, v.name
                    ),
                ));
            }
            if let Some(d) = &v.default {
                if !v.enum_values.is_empty() && !v.enum_values.contains(d) {
                    diags.push(Diagnostic::error(
                        &v.source,
                        format!("server variable `{}` has default `{d}`, which is not one of its enum values", v.name),
                    ));
                }
            }
        }
    }
    for ch in &doc.channels {
        if let Some(address) = &ch.address {
            match address_parameters(address) {
                Err(m) => diags.push(Diagnostic::error(&at(&ch.source, ""), m)),
                Ok(names) => {
                    // The official parser's `asyncapi2/3-channel-parameters` rules: only a
                    // channel with `parameters` is checked (2.x: only when its address has
                    // parameters too); RustStream warns about the other mismatches.
                    let v2 = doc.source_version.starts_with('2');
                    let strict = !ch.parameters.is_empty() && (!v2 || !names.is_empty());
                    let severity = if strict {
                        crate::Severity::Error
                    } else {
                        crate::Severity::Warning
                    };
                    let lenient = if strict {
                        ""
                    } else {
                        " (accepted, as by the official parser)"
                    };
                    for name in &names {
                        if !ch.parameters.iter().any(|p| &p.name == name) {
                            diags.push(
                                Diagnostic::new(
                                    severity,
                                    &ch.source,
                                    format!(
                                        "channel `{}` uses parameter `{{{name}}}` in its address but does not define it{lenient}",
                                        ch.id
                                    ),
                                )
                                .with_hint(format!("add `parameters: {{ {name}: {{}} }}` to the channel")),
                            );
                        }
                    }
                    for p in &ch.parameters {
                        if !names.contains(&p.name) {
                            diags.push(
                                Diagnostic::new(
                                    severity,
                                    &p.source,
                                    format!(
                                        "channel `{}` defines parameter `{}` that its address `{address}` does not use{lenient}",
                                        ch.id, p.name
                                    ),
                                )
                                .with_hint(format!("use `{{{}}}` in the address or remove the parameter", p.name)),
                            );
                        }
                    }
                }
            }
        } else if !ch.parameters.is_empty() {
            diags.push(Diagnostic::warning(
                &ch.source,
                format!("channel `{}` has parameters but no address", ch.id),
            ));
        }
        for p in &ch.parameters {
            if let Some(l) = &p.location {
                if !is_runtime_expression(l) {
                    diags.push(bad_expression(&p.source, l, "parameter location"));
                }
            }
            if let Some(d) = &p.default {
                if !p.enum_values.is_empty() && !p.enum_values.contains(d) {
                    diags.push(Diagnostic::error(
                        &p.source,
                        format!(
                            "parameter `{}` has default `{d}`, which is not one of its enum values",
                            p.name
                        ),
                    ));
                }
            }
        }
        for s in &ch.servers {
            if doc.server(s).is_none() {
                diags.push(
                    Diagnostic::error(
                        &ch.source,
                        format!("channel `{}` names unknown server `{s}`", ch.id),
                    )
                    .with_hint("use a key of the root `servers` object"),
                );
            }
        }
    }
    let mut op_ids: HashMap<&str, &Location> = HashMap::new();
    for op in &doc.operations {
        if let Some(first) = op_ids.insert(&op.id, &op.source) {
            if doc.source_version.starts_with('3') {
                diags.push(Diagnostic::error(
                    &op.source,
                    format!("duplicate operation id `{}` (first at {first})", op.id),
                ));
            }
        }
        if let Some(r) = &op.reply {
            if let Some(a) = &r.address {
                if !is_runtime_expression(a) {
                    diags.push(bad_expression(&r.source, a, "reply address location"));
                }
            }
        }
    }
    ref_only_schema_cycles(doc, diags);
    let mut msg_ids: HashMap<&str, &Location> = HashMap::new();
    for m in &doc.messages {
        if let Some(first) = msg_ids.insert(&m.id, &m.source) {
            diags.push(Diagnostic::error(
                &m.source,
                format!("duplicate message id `{}` (first at {first})", m.id),
            ));
        }
        if let Some(c) = &m.correlation_id {
            if !is_runtime_expression(&c.location) {
                diags.push(bad_expression(
                    &c.source,
                    &c.location,
                    "correlationId location",
                ));
            }
        }
        if let Some(f) = &m.schema_format {
            let media = f.split(';').next().unwrap_or_default().trim();
            if !KNOWN_SCHEMA_FORMATS.contains(&media) {
                diags.push(
                    Diagnostic::warning(
                        &m.source,
                        format!("message `{}` uses unknown schemaFormat `{f}`; its payload is kept as is", m.id),
                    )
                    .with_hint("known formats: AsyncAPI schema, JSON Schema, Avro, OpenAPI, RAML, Protobuf"),
                );
            }
        }
    }
}

/// Schemas that are nothing but a `$ref` to each other (`A: {$ref: B}`, `B: {$ref: A}`) name
/// no type at all. The chain is followed iteratively and stops at the first repeat.
fn ref_only_schema_cycles(doc: &Document, diags: &mut Vec<Diagnostic>) {
    let target = |schema: &serde_json::Value| {
        schema
            .get("$ref")
            .and_then(serde_json::Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .map(crate::diagnostic::unescape_pointer_segment)
    };
    for (key, schema) in &doc.schemas {
        let mut chain = vec![key.clone()];
        let mut current = target(schema);
        while let Some(next) = current {
            if next == *key {
                let location = Location {
                    pointer: format!(
                        "#/components/schemas/{}",
                        crate::diagnostic::escape_pointer_segment(key)
                    ),
                    line: None,
                    column: None,
                    ..doc.source.clone()
                };
                chain.push(next);
                diags.push(
                    Diagnostic::error(
                        &location,
                        format!(
                            "schema `{key}` is a reference cycle with no type in it: {}",
                            chain.join(" -> ")
                        ),
                    )
                    .with_hint("give one of the schemas in the cycle a type or properties"),
                );
                break;
            }
            if chain.contains(&next) {
                break;
            }
            current = doc.schemas.get(&next).and_then(target);
            chain.push(next);
        }
    }
}

fn bad_expression(loc: &Location, expr: &str, what: &str) -> Diagnostic {
    Diagnostic::error(
        loc,
        format!("{what} `{expr}` is not a valid runtime expression"),
    )
    .with_hint("write `$message.header#/<pointer>` or `$message.payload#/<pointer>`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_parameters_are_extracted_in_order() {
        assert_eq!(
            address_parameters("a/{x}/b/{y}").ok(),
            Some(vec!["x".to_string(), "y".to_string()])
        );
        assert!(address_parameters("a/{x").is_err());
        assert!(address_parameters("a/}x").is_err());
        assert!(address_parameters("a/{}").is_err());
    }

    #[test]
    fn runtime_expressions() {
        assert!(is_runtime_expression("$message.header#/replyTo"));
        assert!(is_runtime_expression("$message.payload#/a/b"));
        assert!(!is_runtime_expression("$message.body#/a"));
        assert!(!is_runtime_expression("header#/a"));
        assert!(!is_runtime_expression("$message.header/a"));
    }
}
