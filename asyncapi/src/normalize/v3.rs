//! AsyncAPI 3.x → model.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{FALLBACK_CONTENT_TYPE, Norm, extensions, fields, kind, unique};
use crate::merge::deep_merge;
use crate::model::*;
use crate::resolve::{Node, NodeId, Target, rebase_refs};

/// Lookup tables built while reading channels.
#[derive(Default)]
struct Tables {
    /// Channel entry or target → channel id.
    channels: HashMap<NodeId, String>,
    /// Message entry or target → message id.
    messages: HashMap<NodeId, String>,
    used_messages: HashSet<String>,
    /// Channel id → its index in `Document::channels` (the first one with that id).
    channel_index: HashMap<String, usize>,
}

impl Tables {
    /// The channel `id` of `doc`, as [`Document::channel`] finds it, without a linear search.
    fn channel<'d>(&self, doc: &'d Document, id: &str) -> Option<&'d Channel> {
        self.channel_index
            .get(id)
            .and_then(|&i| doc.channels.get(i))
    }
}

pub(super) fn normalize(n: &mut Norm<'_, '_>, root: &Node) -> Document {
    n.known_fields(root, "the document root", fields::ROOT_V3);
    let mut doc = Document {
        info: n.info(root),
        ..Document::default()
    };
    let default_ct = n.str(root, "defaultContentType");
    let components = n.child(root, "components");
    if let Some(c) = &components {
        for (name, _, scheme) in n.entries(c, "securitySchemes") {
            n.register_scheme(&name, &scheme);
        }
    }
    for (name, _, s) in n.entries(root, "servers") {
        n.known_fields(&s, &format!("server `{name}`"), fields::SERVER_V3);
        let server = Server {
            host: n.req_str(&s, "host", &format!("server `{name}`")),
            protocol: n.req_str(&s, "protocol", &format!("server `{name}`")),
            protocol_version: n.str(&s, "protocolVersion"),
            pathname: n.str(&s, "pathname"),
            title: n.str(&s, "title"),
            summary: n.str(&s, "summary"),
            description: n.str(&s, "description"),
            variables: n.server_variables(&s),
            security: security(n, &s),
            tags: n.tags(&s),
            external_docs: n.external_docs(&s),
            bindings: n.bindings(&s),
            extensions: extensions(&s),
            source: s.loc(),
            name,
        };
        doc.servers.push(server);
    }

    let mut t = Tables::default();
    for (id, entry, ch) in n.entries(root, "channels") {
        n.known_fields(&ch, &format!("channel `{id}`"), fields::CHANNEL_V3);
        t.channels.insert(entry.id(), id.clone());
        t.channels.entry(ch.id()).or_insert_with(|| id.clone());
        let address = match ch.value().get("address") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                let msg = format!("`address` must be a string or null, found {}", kind(other));
                n.ctx.error(&ch.loc_of("address"), msg);
                None
            }
        };
        let mut messages = Vec::new();
        for (key, mentry, m) in n.entries(&ch, "messages") {
            let mid = match t.messages.get(&m.id()) {
                Some(mid) => mid.clone(),
                None => {
                    let base = if n.ctx.is_main(&m.file.path)
                        && m.ptr.starts_with("/components/messages/")
                        && m.ptr.matches('/').count() == 3
                    {
                        crate::diagnostic::unescape_pointer_segment(
                            &m.ptr["/components/messages/".len()..],
                        )
                    } else {
                        key.clone()
                    };
                    let base = if t.used_messages.contains(&base) {
                        format!("{id}_{key}")
                    } else {
                        base
                    };
                    let mid = unique(&mut t.used_messages, &base);
                    let msg = message(n, &m, &mid, default_ct.as_deref());
                    doc.messages.push(msg);
                    t.messages.insert(m.id(), mid.clone());
                    mid
                }
            };
            t.messages.insert(mentry.id(), mid.clone());
            if !messages.contains(&mid) {
                messages.push(mid);
            }
        }
        let parameters = n
            .entries(&ch, "parameters")
            .into_iter()
            .map(|(name, _, p)| Parameter {
                name,
                description: n.str(&p, "description"),
                enum_values: n.strings(&p, "enum"),
                default: n.scalar(&p, "default"),
                examples: n.strings(&p, "examples"),
                location: n.str(&p, "location"),
                source: p.loc(),
            })
            .collect();
        let mut servers = Vec::new();
        for s in n.items(&ch, "servers") {
            match main_key(n, &s, "servers") {
                Some(name) => servers.push(name),
                None => n.ctx.error_hint(
                    &s.loc(),
                    format!("channel `{id}` lists a server that is not a `$ref` to an entry of `servers`"),
                    "write `- $ref: '#/servers/<name>'`",
                ),
            }
        }
        t.channel_index
            .entry(id.clone())
            .or_insert(doc.channels.len());
        doc.channels.push(Channel {
            address,
            title: n.str(&ch, "title"),
            summary: n.str(&ch, "summary"),
            description: n.str(&ch, "description"),
            servers,
            parameters,
            messages,
            tags: n.tags(&ch),
            external_docs: n.external_docs(&ch),
            bindings: n.bindings(&ch),
            extensions: extensions(&ch),
            source: ch.loc(),
            id,
        });
    }

    for (id, _, op) in n.entries(root, "operations") {
        let op = apply_traits(n, &op);
        n.known_fields(&op, &format!("operation `{id}`"), fields::OPERATION_V3);
        let action = match n
            .req_str(&op, "action", &format!("operation `{id}`"))
            .as_str()
        {
            "send" => Action::Send,
            "receive" => Action::Receive,
            "" => Action::Send,
            other => {
                n.ctx.error_hint(
                    &op.loc_of("action"),
                    format!(
                        "operation `{id}` has action `{other}`; it must be `send` or `receive`"
                    ),
                    "3.x actions are seen from the application: `send` or `receive`",
                );
                Action::Send
            }
        };
        let channel = match op.child("channel") {
            Some(c) => channel_ref(n, &t, &c, &format!("operation `{id}`")),
            None => {
                n.ctx.error_hint(
                    &op.loc(),
                    format!("operation `{id}` is missing the required field `channel`"),
                    "add `channel: { $ref: '#/channels/<id>' }`",
                );
                None
            }
        };
        let messages = op_messages(
            n,
            &t,
            &doc,
            &op,
            channel.as_deref(),
            &format!("operation `{id}`"),
        );
        messages_through_channel(n, &op, &format!("operation `{id}`"));
        let reply = n.child(&op, "reply").map(|r| reply(n, &t, &doc, &r, &id));
        doc.operations.push(Operation {
            action,
            channel: channel.unwrap_or_default(),
            messages,
            reply,
            title: n.str(&op, "title"),
            summary: n.str(&op, "summary"),
            description: n.str(&op, "description"),
            security: security(n, &op),
            tags: n.tags(&op),
            external_docs: n.external_docs(&op),
            bindings: n.bindings(&op),
            extensions: extensions(&op),
            source: op.loc(),
            id,
        });
    }
    doc
}

/// The key of `section` (e.g. `servers`) in the main file that the `$ref` in `node` names.
fn main_key(n: &mut Norm<'_, '_>, node: &Node, section: &str) -> Option<String> {
    let r = node.ref_str()?.to_string();
    match n.ctx.resolve_ref(node, &r)? {
        Target::Found(t) if n.ctx.is_main(&t.file.path) => {
            let rest = t.ptr.strip_prefix(&format!("/{section}/"))?;
            (!rest.contains('/')).then(|| crate::diagnostic::unescape_pointer_segment(rest))
        }
        _ => None,
    }
}

/// The channel id a `channel: {$ref}` names.
fn channel_ref(n: &mut Norm<'_, '_>, t: &Tables, c: &Node, what: &str) -> Option<String> {
    let Some(r) = c.ref_str().map(str::to_string) else {
        n.ctx.error_hint(
            &c.loc(),
            format!("{what}: `channel` must be a `$ref` to a channel in `channels`"),
            "write `channel: { $ref: '#/channels/<id>' }`",
        );
        return None;
    };
    let Target::Found(target) = n.ctx.resolve_ref(c, &r)? else {
        return None;
    };
    if let Some(id) = t.channels.get(&target.id()) {
        return Some(id.clone());
    }
    let final_target = n.ctx.deref(&target)?;
    if let Some(id) = t.channels.get(&final_target.id()) {
        n.ctx.warn(
            &c.loc(),
            format!("{what}: channel `{r}` should be referenced through `#/channels/{id}`"),
        );
        return Some(id.clone());
    }
    n.ctx.error_hint(
        &c.loc(),
        format!("{what} references `{r}`, which is not a channel of `channels`"),
        "operations must point at an entry of the root `channels` object",
    );
    None
}

/// The message ids a `messages: [{$ref}]` list names, checked against the channel's.
fn message_refs(
    n: &mut Norm<'_, '_>,
    t: &Tables,
    doc: &Document,
    items: Vec<Node>,
    channel: Option<&str>,
    what: &str,
) -> Vec<String> {
    let allowed: Option<&Vec<String>> =
        channel.and_then(|c| t.channel(doc, c)).map(|c| &c.messages);
    let mut out = Vec::new();
    for item in items {
        let Some(r) = item.ref_str().map(str::to_string) else {
            n.ctx.error_hint(
                &item.loc(),
                format!("{what}: each message must be a `$ref` to a message of its channel"),
                "write `- $ref: '#/channels/<channel>/messages/<key>'`",
            );
            continue;
        };
        let Some(Target::Found(target)) = n.ctx.resolve_ref(&item, &r) else {
            continue;
        };
        let id = match t.messages.get(&target.id()) {
            Some(id) => Some(id.clone()),
            None => match n.ctx.deref(&target) {
                Some(f) => t.messages.get(&f.id()).cloned(),
                // Already reported where the reference chain breaks.
                None => continue,
            },
        };
        match (id, allowed) {
            (Some(id), Some(allowed)) if allowed.contains(&id) => out.push(id),
            (_, None) => {}
            (_, Some(_)) => n.ctx.error_hint(
                &item.loc(),
                format!(
                    "{what} references message `{r}`, which is not a message of channel `{}`",
                    channel.unwrap_or_default()
                ),
                &format!(
                    "reference one of the channel's messages: `#/channels/{}/messages/<key>`",
                    channel.unwrap_or_default()
                ),
            ),
        }
    }
    out
}

/// The official parser's `asyncapi3-operation-messages-from-referred-channel` rule: each of an
/// operation's `messages` must be written as a reference below its channel reference
/// (`<channel $ref>/messages/…`), even when another path reaches the same message.
fn messages_through_channel(n: &mut Norm<'_, '_>, op: &Node, what: &str) {
    let Some(channel_ref) = op
        .value()
        .get("channel")
        .and_then(|c| c.get("$ref"))
        .and_then(Value::as_str)
    else {
        return;
    };
    let prefix = format!("{channel_ref}/messages");
    let Some(Value::Array(items)) = op.value().get("messages") else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        if let Some(r) = item.get("$ref").and_then(Value::as_str) {
            if !r.starts_with(&prefix) {
                let at = op.below(format!("{}/messages/{i}", op.ptr));
                n.ctx.error_hint(
                    &at.loc(),
                    format!(
                        "{what}: message `{r}` is not referenced through the operation's channel `{channel_ref}`"
                    ),
                    &format!(
                        "write `$ref: '{prefix}/<key>'` (the official parser rejects any other path, even to the same message)"
                    ),
                );
            }
        }
    }
}

fn op_messages(
    n: &mut Norm<'_, '_>,
    t: &Tables,
    doc: &Document,
    node: &Node,
    channel: Option<&str>,
    what: &str,
) -> Vec<String> {
    if node.value().get("messages").is_some_and(|m| !m.is_null()) {
        let items = n.items(node, "messages");
        message_refs(n, t, doc, items, channel, what)
    } else {
        channel
            .and_then(|c| t.channel(doc, c))
            .map(|c| c.messages.clone())
            .unwrap_or_default()
    }
}

fn reply(n: &mut Norm<'_, '_>, t: &Tables, doc: &Document, r: &Node, op: &str) -> OperationReply {
    let what = format!("the reply of operation `{op}`");
    let channel = r
        .child("channel")
        .filter(|c| !c.value().is_null())
        .and_then(|c| channel_ref(n, t, &c, &what));
    let address_node = n.child(r, "address");
    let address = address_node
        .as_ref()
        .map(|a| n.req_str(a, "location", "a reply address"));
    if let (Some(a), Some(ch)) = (
        &address_node,
        channel.as_deref().and_then(|c| t.channel(doc, c)),
    ) {
        if let Some(fixed) = &ch.address {
            // The official parser accepts it.
            let d = crate::Diagnostic::warning(
                &a.loc(),
                format!(
                    "{what} gives a dynamic address, but its reply channel `{}` has the fixed address `{fixed}` (accepted, as by the official parser)",
                    ch.id
                ),
            )
            .with_hint("when a reply `address` is given, the reply channel's `address` should be null (or drop the reply `address`)");
            n.ctx.diags.push(d);
        }
    }
    if channel.is_none() && address.is_none() && r.value().get("channel").is_none() {
        n.ctx.warn(
            &r.loc(),
            format!("{what} names neither a channel nor an address"),
        );
    }
    OperationReply {
        messages: op_messages(n, t, doc, r, channel.as_deref(), &what),
        channel,
        address,
        source: r.loc(),
    }
}

/// 3.x trait merge: traits in order, then the object itself wins.
fn apply_traits(n: &mut Norm<'_, '_>, node: &Node) -> Node {
    let traits = n.items(node, "traits");
    if traits.is_empty() {
        return node.clone();
    }
    let mut base = Value::Object(Map::new());
    for tr in traits {
        if let Some(mut tv) = n.deref(&tr) {
            if tv.file.path != node.file.path {
                let mut v = tv.value().clone();
                rebase_refs(&mut v, &tv.file.path, &node.file.path);
                tv = tv.with_value(v);
            }
            if tv.value().is_object() {
                deep_merge(&mut base, tv.value());
            } else {
                let msg = format!("a trait must be a mapping, found {}", kind(tv.value()));
                n.ctx.error(&tv.loc(), msg);
            }
        }
    }
    let mut own = node.value().clone();
    if let Value::Object(m) = &mut own {
        m.remove("traits");
    }
    deep_merge(&mut base, &own);
    node.with_value(base)
}

fn message(n: &mut Norm<'_, '_>, m: &Node, id: &str, default_ct: Option<&str>) -> Message {
    let m = apply_traits(n, m);
    n.known_fields(&m, &format!("message `{id}`"), fields::MESSAGE_V3);
    let (payload, schema_format) = n.schema_field(&m, "payload");
    let (headers, _) = n.schema_field(&m, "headers");
    let content_type = n
        .str(&m, "contentType")
        .or_else(|| default_ct.map(str::to_string))
        .unwrap_or_else(|| FALLBACK_CONTENT_TYPE.to_string());
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
        schema_format,
        tags: n.tags(&m),
        external_docs: n.external_docs(&m),
        examples: n
            .items(&m, "examples")
            .into_iter()
            .map(|e| e.value().clone())
            .collect(),
        bindings: n.bindings(&m),
        extensions: extensions(&m),
        source: m.loc(),
    }
}

/// 3.x security: a list of `$ref`s to schemes or inline schemes (with `scopes`).
pub(super) fn security(n: &mut Norm<'_, '_>, node: &Node) -> Vec<SecurityRequirement> {
    let mut out = Vec::new();
    for item in n.items(node, "security") {
        let Some(target) = n.deref(&item) else {
            continue;
        };
        if !target.value().is_object() {
            let msg = format!(
                "a security requirement must be a mapping, found {}",
                kind(target.value())
            );
            n.ctx.error(&target.loc(), msg);
            continue;
        }
        let scopes = n.strings(&target, "scopes");
        let name = if item.ref_str().is_some() {
            let seg = target.ptr.rsplit('/').next().unwrap_or_default();
            crate::diagnostic::unescape_pointer_segment(seg)
        } else {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Value::Object(m) = &mut v {
                    m.remove("scopes");
                }
                v
            };
            let me = strip(target.value());
            match n.schemes.iter().find(|s| strip(&s.raw) == me) {
                Some(s) => s.name.clone(),
                None => {
                    let ty = target
                        .value()
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("scheme");
                    let mut used: HashSet<String> =
                        n.schemes.iter().map(|s| s.name.clone()).collect();
                    unique(&mut used, &super::sanitize_id(ty))
                }
            }
        };
        let scheme_node = match target.value() {
            Value::Object(m) if m.contains_key("scopes") => {
                let mut m = m.clone();
                m.remove("scopes");
                target.with_value(Value::Object(m))
            }
            _ => target.clone(),
        };
        n.register_scheme(&name, &scheme_node);
        out.push(SecurityRequirement {
            scheme: name,
            scopes,
        });
    }
    out
}
