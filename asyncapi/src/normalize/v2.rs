//! AsyncAPI 2.x → model. 2.x describes the *client*: `publish` means the application
//! receives, `subscribe` means it sends.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{FALLBACK_CONTENT_TYPE, Norm, extensions, fields, kind, sanitize_id, unique};
use crate::merge::merge_patch;
use crate::model::*;
use crate::resolve::{Node, NodeId, rebase_refs};

pub(super) fn normalize(n: &mut Norm<'_, '_>, root: &Node) -> Document {
    n.known_fields(root, "the document root", fields::ROOT_V2);
    let mut info = n.info(root);
    info.tags = n.tags(root);
    info.external_docs = n.external_docs(root);
    let mut doc = Document {
        info,
        ..Document::default()
    };
    let default_ct = n.str(root, "defaultContentType");
    if let Some(c) = n.child(root, "components") {
        for (name, _, scheme) in n.entries(&c, "securitySchemes") {
            n.register_scheme(&name, &scheme);
        }
        // 3.x names the OAuth2 flow scopes `availableScopes`.
        for scheme in &mut n.schemes {
            if let Some(Value::Object(flows)) = scheme.raw.get_mut("flows") {
                for flow in flows.values_mut() {
                    if let Value::Object(f) = flow {
                        if let Some(scopes) = f.remove("scopes") {
                            f.insert("availableScopes".to_string(), scopes);
                        }
                    }
                }
            }
        }
    }
    for (name, _, s) in n.entries(root, "servers") {
        n.known_fields(&s, &format!("server `{name}`"), fields::SERVER_V2);
        let url = n.req_str(&s, "url", &format!("server `{name}`"));
        let (host, pathname) = split_url(&url);
        let server = Server {
            host,
            pathname,
            protocol: n.req_str(&s, "protocol", &format!("server `{name}`")),
            protocol_version: n.str(&s, "protocolVersion"),
            title: None,
            summary: None,
            description: n.str(&s, "description"),
            variables: n.server_variables(&s),
            security: security(n, &s),
            tags: n.tags(&s),
            external_docs: None,
            bindings: n.bindings(&s),
            extensions: extensions(&s),
            source: s.loc(),
            name,
        };
        doc.servers.push(server);
    }

    let mut channel_ids = HashSet::new();
    let mut op_ids: HashMap<String, Node> = HashMap::new();
    let mut message_ids: HashMap<NodeId, String> = HashMap::new();
    let mut used_messages = HashSet::new();
    let mut explicit_ids: HashMap<String, NodeId> = HashMap::new();
    for (name, _, ch) in n.entries(root, "channels") {
        n.known_fields(&ch, &format!("channel `{name}`"), fields::CHANNEL_V2);
        let id = unique(&mut channel_ids, &sanitize_id(&name));
        let parameters = n
            .entries(&ch, "parameters")
            .into_iter()
            .map(|(pname, _, p)| {
                let schema = n.child(&p, "schema");
                let from_schema =
                    |n: &mut Norm<'_, '_>,
                     f: &dyn Fn(&mut Norm<'_, '_>, &Node) -> Option<String>| {
                        schema.as_ref().and_then(|s| f(n, s))
                    };
                let description = n
                    .str(&p, "description")
                    .or_else(|| from_schema(n, &|n, s| n.str(s, "description")));
                let default = from_schema(n, &|n, s| n.scalar(s, "default"));
                let (enum_values, examples) = match &schema {
                    Some(s) => (n.strings(s, "enum"), n.strings(s, "examples")),
                    None => (Vec::new(), Vec::new()),
                };
                Parameter {
                    name: pname,
                    description,
                    enum_values,
                    default,
                    examples,
                    location: n.str(&p, "location"),
                    source: p.loc(),
                }
            })
            .collect();
        let servers = n.strings(&ch, "servers");
        let mut channel = Channel {
            id: id.clone(),
            address: Some(name.clone()),
            title: None,
            summary: None,
            description: n.str(&ch, "description"),
            servers,
            parameters,
            messages: Vec::new(),
            tags: Vec::new(),
            external_docs: None,
            bindings: n.bindings(&ch),
            extensions: extensions(&ch),
            source: ch.loc(),
        };
        for verb in ["publish", "subscribe"] {
            let Some(op) = n.child(&ch, verb) else {
                continue;
            };
            if !op.value().is_object() {
                let msg = format!("`{verb}` must be a mapping, found {}", kind(op.value()));
                n.ctx.error(&op.loc(), msg);
                continue;
            }
            let op = apply_traits(n, &op);
            n.known_fields(
                &op,
                &format!("the `{verb}` operation of `{name}`"),
                fields::OPERATION_V2,
            );
            let op_id = match n.str(&op, "operationId") {
                Some(explicit) => {
                    if let Some(first) = op_ids.get(&explicit) {
                        let first = first.loc();
                        n.ctx.error_hint(
                            &op.loc_of("operationId"),
                            format!("duplicate operationId `{explicit}` (first used at {first})"),
                            "operation ids must be unique in the document",
                        );
                    }
                    explicit
                }
                None => {
                    let mut pascal = String::new();
                    for word in name.split(|c: char| !c.is_ascii_alphanumeric()) {
                        let mut cs = word.chars();
                        if let Some(f) = cs.next() {
                            pascal.push(f.to_ascii_uppercase());
                            pascal.extend(cs);
                        }
                    }
                    let base = format!("{verb}{pascal}");
                    let mut id = base.clone();
                    let mut k = 2;
                    while op_ids.contains_key(&id) {
                        id = format!("{base}{k}");
                        k += 1;
                    }
                    id
                }
            };
            op_ids.entry(op_id.clone()).or_insert_with(|| op.clone());
            let mut messages = Vec::new();
            if let Some(m) = n.child(&op, "message") {
                let list = if m.value().get("oneOf").is_some() {
                    n.items(&m, "oneOf")
                } else {
                    vec![m]
                };
                let many = list.len() > 1;
                for (i, entry) in list.into_iter().enumerate() {
                    let Some(mnode) = n.deref(&entry) else {
                        continue;
                    };
                    if !mnode.value().is_object() {
                        let msg =
                            format!("a message must be a mapping, found {}", kind(mnode.value()));
                        n.ctx.error(&mnode.loc(), msg);
                        continue;
                    }
                    let mid = match message_ids.get(&mnode.id()) {
                        Some(mid) => mid.clone(),
                        None => {
                            let explicit = n.str(&mnode, "messageId");
                            if let Some(e) = &explicit {
                                if explicit_ids
                                    .get(e)
                                    .is_some_and(|first| *first != mnode.id())
                                {
                                    n.ctx.error_hint(
                                        &mnode.loc_of("messageId"),
                                        format!("duplicate messageId `{e}`"),
                                        "message ids must be unique in the document",
                                    );
                                }
                                explicit_ids.insert(e.clone(), mnode.id());
                            }
                            let base = if n.ctx.is_main(&mnode.file.path)
                                && mnode.ptr.starts_with("/components/messages/")
                                && mnode.ptr.matches('/').count() == 3
                            {
                                crate::diagnostic::unescape_pointer_segment(
                                    &mnode.ptr["/components/messages/".len()..],
                                )
                            } else if let Some(e) = explicit {
                                e
                            } else if let Some(name) =
                                mnode.value().get("name").and_then(Value::as_str)
                            {
                                name.to_string()
                            } else if many {
                                format!("{op_id}Message{}", i + 1)
                            } else {
                                format!("{op_id}Message")
                            };
                            let mid = unique(&mut used_messages, &sanitize_id(&base));
                            let msg = message(n, &mnode, &mid, default_ct.as_deref());
                            doc.messages.push(msg);
                            message_ids.insert(mnode.id(), mid.clone());
                            mid
                        }
                    };
                    if !messages.contains(&mid) {
                        messages.push(mid.clone());
                    }
                    if !channel.messages.contains(&mid) {
                        channel.messages.push(mid);
                    }
                }
            }
            doc.operations.push(Operation {
                id: op_id,
                action: if verb == "publish" {
                    Action::Receive
                } else {
                    Action::Send
                },
                channel: id.clone(),
                messages,
                reply: None,
                title: None,
                summary: n.str(&op, "summary"),
                description: n.str(&op, "description"),
                security: security(n, &op),
                tags: n.tags(&op),
                external_docs: n.external_docs(&op),
                bindings: n.bindings(&op),
                extensions: extensions(&op),
                source: op.loc(),
            });
        }
        doc.channels.push(channel);
    }
    doc
}

/// Splits a 2.x server `url` into host and path (`mqtt://h:1883/p` → `h:1883`, `/p`).
fn split_url(url: &str) -> (String, Option<String>) {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url,
    };
    match rest.find('/') {
        Some(i) if i + 1 < rest.len() => (rest[..i].to_string(), Some(rest[i..].to_string())),
        Some(i) => (rest[..i].to_string(), None),
        None => (rest.to_string(), None),
    }
}

/// 2.x trait merge: JSON Merge Patch of each trait over the object, in order.
fn apply_traits(n: &mut Norm<'_, '_>, node: &Node) -> Node {
    let traits = n.items(node, "traits");
    if traits.is_empty() {
        return node.clone();
    }
    let mut value = node.value().clone();
    if let Value::Object(m) = &mut value {
        m.remove("traits");
    }
    for tr in traits {
        if let Some(mut tv) = n.deref(&tr) {
            if tv.file.path != node.file.path {
                let mut v = tv.value().clone();
                rebase_refs(&mut v, &tv.file.path, &node.file.path);
                tv = tv.with_value(v);
            }
            if tv.value().is_object() {
                merge_patch(&mut value, tv.value());
            } else {
                let msg = format!("a trait must be a mapping, found {}", kind(tv.value()));
                n.ctx.error(&tv.loc(), msg);
            }
        }
    }
    node.with_value(value)
}

fn message(n: &mut Norm<'_, '_>, m: &Node, id: &str, default_ct: Option<&str>) -> Message {
    let m = apply_traits(n, m);
    n.known_fields(&m, &format!("message `{id}`"), fields::MESSAGE_V2);
    let (payload, _) = n.schema_field(&m, "payload");
    let (headers, _) = n.schema_field(&m, "headers");
    let content_type = n
        .str(&m, "contentType")
        .or_else(|| default_ct.map(str::to_string))
        .unwrap_or_else(|| FALLBACK_CONTENT_TYPE.to_string());
    let examples = n
        .items(&m, "examples")
        .into_iter()
        .map(|e| e.value().clone())
        .collect();
    Message {
        id: id.to_string(),
        name: n.str(&m, "name"),
        title: n.str(&m, "title"),
        summary: n.str(&m, "summary"),
        description: n.str(&m, "description"),
        content_type,
        payload,
        headers,
        correlation_id: n.correlation_id(&m),
        schema_format: n.str(&m, "schemaFormat"),
        tags: n.tags(&m),
        external_docs: n.external_docs(&m),
        examples,
        bindings: n.bindings(&m),
        extensions: extensions(&m),
        source: m.loc(),
    }
}

/// 2.x security: a list of `{schemeName: [scopes]}`.
fn security(n: &mut Norm<'_, '_>, node: &Node) -> Vec<SecurityRequirement> {
    let mut out = Vec::new();
    for item in n.items(node, "security") {
        let Value::Object(m) = item.value() else {
            let msg = format!(
                "a security requirement must be a mapping, found {}",
                kind(item.value())
            );
            n.ctx.error(&item.loc(), msg);
            continue;
        };
        for (scheme, scopes) in m {
            if !n.schemes.iter().any(|s| &s.name == scheme) {
                n.ctx.error_hint(
                    &item.loc_of(scheme),
                    format!("security requirement names unknown security scheme `{scheme}`"),
                    "declare it under `components.securitySchemes`",
                );
            }
            let scopes = match scopes {
                Value::Array(a) => a
                    .iter()
                    .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            out.push(SecurityRequirement {
                scheme: scheme.clone(),
                scopes,
            });
        }
    }
    out
}
