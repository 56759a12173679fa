//! Document → one Rust file: types, messages, channel parameters, application and client.

use std::collections::BTreeMap;

use asyncapi::{Action, Channel, Document, Message, Operation};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::naming::{Scope, doc_or, ident, pascal, snake};
use crate::types::TypeGen;
use crate::{Config, Error, Result};

/// Names the generated file defines itself; schema types never take them.
const RESERVED: &[&str] = &[
    "Handler",
    "Publisher",
    "Client",
    "ASYNCAPI_JSON",
    "BINDINGS",
    "Connection",
    "Context",
    "Router",
    "Route",
    "HandlerError",
    "Headers",
    "Address",
    "Result",
    "Option",
    "String",
    "Vec",
    "Box",
];

/// Everything the generator knows about one message.
struct MessageInfo {
    /// Module name under `messages`.
    module: String,
    /// Variant name in multi-message enums.
    variant: String,
    payload: TokenStream,
    headers: Option<TokenStream>,
    content_type: String,
}

/// One operation, resolved against its channel and messages.
pub(crate) struct Op<'d> {
    pub(crate) op: &'d Operation,
    pub(crate) method: String,
    /// The client's subscribe method for an operation the application sends.
    pub(crate) subscribe_method: String,
    pub(crate) address: String,
    pub(crate) params: Option<TokenStream>,
    /// The message type (payload, or enum for several messages).
    pub(crate) message: TokenStream,
    pub(crate) content_type: String,
    pub(crate) headers: Option<TokenStream>,
    pub(crate) reply: Option<ReplyInfo>,
    /// The NATS operation binding's `queue`: the route's queue group.
    pub(crate) queue: Option<String>,
    /// Several messages: the message enum decodes by content type first.
    pub(crate) multi: bool,
}

pub(crate) struct ReplyInfo {
    pub(crate) message: TokenStream,
    pub(crate) content_type: String,
    pub(crate) address: Option<String>,
}

/// The raw bindings of an operation, its channel and its messages as one JSON object (only
/// the parts that have bindings); `None` when there are none.
fn op_bindings(
    doc: &Document,
    channel: &Channel,
    op: &Operation,
    message_ids: &[String],
) -> Option<String> {
    let present = |v: &Value| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty());
    let mut out = serde_json::Map::new();
    if present(&channel.bindings) {
        out.insert("channel".into(), channel.bindings.clone());
    }
    if present(&op.bindings) {
        out.insert("operation".into(), op.bindings.clone());
    }
    let messages: serde_json::Map<String, Value> = message_ids
        .iter()
        .filter_map(|id| doc.message(id))
        .filter(|m| present(&m.bindings))
        .map(|m| (m.id.clone(), m.bindings.clone()))
        .collect();
    if !messages.is_empty() {
        out.insert("messages".into(), Value::Object(messages));
    }
    (!out.is_empty()).then(|| Value::Object(out).to_string())
}

/// Generate the formatted Rust file for `doc`.
pub(crate) fn generate(doc: &Document, config: &Config) -> Result<String> {
    ref_only_cycles(doc)?;
    let opts = config.type_options()?;
    let mut types = TypeGen::new(&doc.schemas, &opts, Scope::with_reserved(RESERVED));
    types.generate_components();

    let mut items: Vec<TokenStream> = Vec::new();

    // Messages.
    let mut messages: BTreeMap<&str, MessageInfo> = BTreeMap::new();
    let mut module_scope = Scope::default();
    let mut message_modules = Vec::new();
    for message in &doc.messages {
        let base = pascal(&message.id);
        let payload = match &message.payload {
            Some(schema) => types.named_type_for(schema, &format!("{base}Payload")),
            None => quote!(()),
        };
        let headers = message
            .headers
            .as_ref()
            .map(|schema| types.named_type_for(schema, &format!("{base}Headers")));
        let module = module_scope.claim(&snake(&message.id));
        if let (Some(h), Some(schema)) = (&headers, &message.headers) {
            items.push(headers_impl(h, schema, &doc.schemas));
        }
        message_modules.push(message_module(message, &module, &payload, headers.as_ref()));
        messages.insert(
            &message.id,
            MessageInfo {
                module,
                variant: base,
                payload,
                headers,
                content_type: message.content_type.clone(),
            },
        );
    }

    // Channel parameter structs.
    let mut params: BTreeMap<&str, TokenStream> = BTreeMap::new();
    for channel in &doc.channels {
        if channel.parameters.is_empty() {
            continue;
        }
        let Some(address) = &channel.address else {
            continue;
        };
        // 2.x channels are keyed by their address, which makes a poor type name: use the
        // first operation on the channel instead.
        let base = if doc.source_version.starts_with('2') {
            doc.operations
                .iter()
                .find(|op| op.channel == channel.id)
                .map_or(channel.id.as_str(), |op| op.id.as_str())
        } else {
            channel.id.as_str()
        };
        let name = types.scope().claim(&format!("{}Params", pascal(base)));
        let id = format_ident!("{}", name);
        items.push(params_struct(&id, channel, address));
        params.insert(&channel.id, quote!(#id));
    }

    // Operations.
    let mut ops = Vec::new();
    let mut bindings: Vec<(String, String)> = Vec::new();
    let mut method_scope = Scope::with_reserved(&["new", "connection", "into_inner"]);
    for op in &doc.operations {
        let Some(channel) = doc.channel(&op.channel) else {
            continue;
        };
        let Some(address) = channel.address.clone() else {
            // A channel without an address is only known at run time; nothing to bind.
            continue;
        };
        let message_ids = if op.messages.is_empty() {
            &channel.messages
        } else {
            &op.messages
        };
        let (message, content_type, headers) =
            op_message(&mut types, &mut items, &messages, message_ids, &op.id);
        let reply = op.reply.as_ref().map(|reply| {
            let reply_channel = reply.channel.as_deref().and_then(|c| doc.channel(c));
            let ids = if reply.messages.is_empty() {
                reply_channel
                    .map(|c| c.messages.clone())
                    .unwrap_or_default()
            } else {
                reply.messages.clone()
            };
            let (message, content_type, _) = op_message(
                &mut types,
                &mut items,
                &messages,
                &ids,
                &format!("{}Reply", op.id),
            );
            ReplyInfo {
                message,
                content_type,
                // The router renders a reply template with the request's parameters, so a
                // template is usable when the request's address has all of its parameters.
                address: reply_channel
                    .and_then(|c| c.address.clone())
                    .filter(|a| {
                        template_params(a).all(|p| template_params(&address).any(|q| q == p))
                    })
                    .or_else(|| reply.address.clone().filter(|a| !a.starts_with('$'))),
            }
        });
        let queue = op
            .bindings
            .pointer("/nats/queue")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(json) = op_bindings(doc, channel, op, message_ids) {
            bindings.push((op.id.clone(), json));
        }
        let multi = message_ids
            .iter()
            .filter(|id| messages.contains_key(id.as_str()))
            .count()
            > 1;
        ops.push(Op {
            op,
            queue,
            multi,
            method: method_scope.claim(&snake(&op.id)),
            subscribe_method: String::new(),
            address,
            params: params.get(channel.id.as_str()).cloned(),
            message,
            content_type,
            headers,
            reply,
        });
    }

    // Client subscribe methods share the client's namespace with the publish methods.
    for op in ops.iter_mut().filter(|o| !o.receives()) {
        op.subscribe_method = method_scope.claim(&format!("subscribe_{}", snake(&op.op.id)));
    }

    let side = config.side_setting();
    if side.app() {
        items.push(crate::service::application(&ops));
    }
    if side.client() {
        items.push(crate::service::client(&ops));
    }

    let binding_pairs = bindings.iter().map(|(id, json)| quote!((#id, #json)));
    items.push(quote! {
        /// The protocol bindings of each operation that has any, as `(operation id, JSON)`:
        /// a JSON object with the non-empty `channel`, `operation` and `messages` (message id →
        /// bindings) bindings, raw as in the spec (e.g. NATS `queue`, MQTT `qos`/`retain`, AMQP
        /// exchange/queue). `register` applies the NATS `queue` as the route's queue group.
        pub const BINDINGS: &[(&str, &str)] = &[#(#binding_pairs),*];
    });

    let doc_json = asyncapi::emit::to_json(doc);
    items.push(quote! {
        /// The normalised AsyncAPI 3.0 document this code was generated from, as JSON.
        pub const ASYNCAPI_JSON: &str = #doc_json;
    });

    let (type_items, _) = types.finish();
    let tokens = quote! {
        #(#type_items)*
        /// Metadata of each message: name, content type, correlation id location, types.
        pub mod messages {
            #(#message_modules)*
        }
        #(#items)*
    };
    let file: syn::File = syn::parse2(tokens).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!(
        "// @generated by ruststream-build from AsyncAPI document `{}` version {}. Do not edit.\n{}",
        doc.info.title.replace(['\n', '\r'], " "),
        doc.info.version.replace(['\n', '\r'], " "),
        prettyplease::unparse(&file)
    ))
}

/// Schemas that are nothing but a `$ref` to each other (`A: {$ref: B}`, `B: {$ref: A}`) name
/// no type at all: refuse them with a located diagnostic.
fn ref_only_cycles(doc: &Document) -> Result<()> {
    let target = |schema: &Value| {
        schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .map(str::to_owned)
    };
    let mut diagnostics = Vec::new();
    for (key, schema) in &doc.schemas {
        let mut chain = vec![key.clone()];
        let mut current = target(schema);
        while let Some(next) = current {
            if next == *key {
                let location = asyncapi::Location {
                    pointer: format!(
                        "#/components/schemas/{}",
                        key.replace('~', "~0").replace('/', "~1")
                    ),
                    line: None,
                    column: None,
                    ..doc.source.clone()
                };
                chain.push(next);
                diagnostics.push(
                    asyncapi::Diagnostic::error(
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
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(Error::Spec(asyncapi::Diagnostics(diagnostics)))
    }
}

/// The `{name}` parameters of an address template.
fn template_params(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// The message type, content type and headers type of an operation's message list.
fn op_message(
    types: &mut TypeGen<'_>,
    items: &mut Vec<TokenStream>,
    messages: &BTreeMap<&str, MessageInfo>,
    ids: &[String],
    op_id: &str,
) -> (TokenStream, String, Option<TokenStream>) {
    let found: Vec<&MessageInfo> = ids
        .iter()
        .filter_map(|id| messages.get(id.as_str()))
        .collect();
    match found.as_slice() {
        [] => (
            quote!(::ruststream::reexports::serde_json::Value),
            "application/json".to_owned(),
            None,
        ),
        [single] => (
            single.payload.clone(),
            single.content_type.clone(),
            single.headers.clone(),
        ),
        several => {
            let name = types.scope().claim(&format!("{}Message", pascal(op_id)));
            let id = format_ident!("{}", name);
            let mut scope = Scope::default();
            let names: Vec<_> = several
                .iter()
                .map(|m| format_ident!("{}", scope.claim(&m.variant)))
                .collect();
            let variants = several.iter().zip(&names).map(|(m, v)| {
                let p = &m.payload;
                let doc = format!(" The [`messages::{}`] message.", m.module);
                quote! {
                    #[doc = #doc]
                    #v(#p),
                }
            });
            let attempt = |m: &MessageInfo, v: &proc_macro2::Ident| {
                let p = &m.payload;
                quote! {
                    match ::ruststream::codec::decode::<#p>(content_type, payload) {
                        ::core::result::Result::Ok(value) => return ::core::result::Result::Ok(Self::#v(value)),
                        ::core::result::Result::Err(e) => last = ::core::option::Option::Some(e),
                    }
                }
            };
            let declared = several.iter().zip(&names).map(|(m, v)| {
                let ct = &m.content_type;
                let attempt = attempt(m, v);
                quote!(if essence.eq_ignore_ascii_case(#ct) { #attempt })
            });
            let others = several.iter().zip(&names).map(|(m, v)| {
                let ct = &m.content_type;
                let attempt = attempt(m, v);
                quote!(if !essence.eq_ignore_ascii_case(#ct) { #attempt })
            });
            let doc = format!(
                " One of the messages of operation `{op_id}`; decoded by trying each in order \
                 (the application's routes decode by content type first: see `decode`)."
            );
            items.push(quote! {
                #[doc = #doc]
                #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
                #[serde(untagged)]
                // Variants mirror the messages; boxing the large ones would only hurt construction.
                #[allow(clippy::large_enum_variant)]
                pub enum #id {
                    #(#variants)*
                }

                impl #id {
                    /// Decode a payload of `content_type`: first as the messages declared with
                    /// that content type, then as each other message, in order.
                    ///
                    /// # Errors
                    /// When no message decodes (the last error).
                    pub fn decode(content_type: &str, payload: &[u8]) -> ::ruststream::Result<Self> {
                        let essence = content_type.split(';').next().unwrap_or_default().trim();
                        let mut last = ::core::option::Option::None;
                        #(#declared)*
                        #(#others)*
                        ::core::result::Result::Err(last.unwrap_or_else(|| ::ruststream::Error::Codec {
                            content_type: content_type.to_owned().into(),
                            message: "no message of the operation matched".into(),
                        }))
                    }
                }
            });
            // All messages of one operation share a content type in practice; the first wins.
            (quote!(#id), several[0].content_type.clone(), None)
        }
    }
}

fn message_module(
    message: &Message,
    module: &str,
    payload: &TokenStream,
    headers: Option<&TokenStream>,
) -> TokenStream {
    let module_id = ident(module);
    let docs = doc_or(
        message.title.as_deref().or(message.summary.as_deref()),
        message.description.as_deref(),
        &format!("Message `{}`.", message.id.replace('`', "'")),
    );
    let name = message.name.clone().unwrap_or_else(|| message.id.clone());
    let id = &message.id;
    let content_type = &message.content_type;
    let correlation = match &message.correlation_id {
        Some(c) => {
            let loc = &c.location;
            quote!(::core::option::Option::Some(#loc))
        }
        None => quote!(::core::option::Option::None),
    };
    let payload = qualify(payload);
    let headers = headers.map(|h| {
        let h = qualify(h);
        quote! {
            /// The headers type.
            pub type Headers = #h;
        }
    });
    quote! {
        #docs
        pub mod #module_id {
            /// The message id in the document.
            pub const ID: &str = #id;
            /// The message name.
            pub const NAME: &str = #name;
            /// The content type of the payload.
            pub const CONTENT_TYPE: &str = #content_type;
            /// Where the correlation id is (a runtime expression), if the document says.
            pub const CORRELATION_ID: ::core::option::Option<&str> = #correlation;
            /// The payload type.
            pub type Payload = #payload;
            #headers
        }
    }
}

/// A type as seen from `messages::<module>` (two levels down): generated names get
/// `super::super::`, paths (replacements, std types) stay as they are.
fn qualify(ty: &TokenStream) -> TokenStream {
    match syn::parse2::<syn::Ident>(ty.clone()) {
        Ok(id) => quote!(super::super::#id),
        Err(_) => ty.clone(),
    }
}

fn headers_impl<'a>(
    ty: &TokenStream,
    schema: &'a Value,
    schemas: &'a BTreeMap<String, Value>,
) -> TokenStream {
    let mut resolved = schema;
    for _ in 0..32 {
        match resolved
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|k| schemas.get(k))
        {
            Some(next) => resolved = next,
            None => break,
        }
    }
    let Some(props) = resolved.get("properties").and_then(Value::as_object) else {
        return quote!();
    };
    let resolve = |mut schema: &'a Value| {
        for _ in 0..32 {
            match schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|k| schemas.get(k))
            {
                Some(next) => schema = next,
                None => break,
            }
        }
        schema
    };
    let string_fields: Vec<&str> = props
        .iter()
        .filter(|(_, s)| {
            let s = resolve(s);
            s.get("type").and_then(Value::as_str) == Some("string") || s.get("enum").is_some()
        })
        .map(|(k, _)| k.as_str())
        .collect();
    let fields: Vec<&str> = props.keys().map(String::as_str).collect();
    quote! {
        impl #ty {
            /// Encode as message headers: strings as they are, other values as JSON text.
            ///
            /// # Errors
            /// When the value cannot be serialised.
            pub fn to_headers(&self) -> ::ruststream::Result<::ruststream::Headers> {
                let mut out = ::ruststream::Headers::default();
                let value = ::ruststream::reexports::serde_json::to_value(self).map_err(|e| ::ruststream::Error::Codec {
                    content_type: "headers".into(),
                    message: e.to_string(),
                })?;
                if let ::ruststream::reexports::serde_json::Value::Object(map) = value {
                    for (name, value) in map {
                        match value {
                            ::ruststream::reexports::serde_json::Value::Null => {}
                            ::ruststream::reexports::serde_json::Value::String(s) => out.insert(name, s),
                            other => out.insert(name, other.to_string()),
                        }
                    }
                }
                Ok(out)
            }

            /// Decode from message headers (the inverse of `to_headers`). Only the headers the
            /// schema names are read (case-insensitively), so transport headers never get in
            /// the way.
            ///
            /// # Errors
            /// When a header is missing or has the wrong type.
            pub fn from_headers(headers: &::ruststream::Headers) -> ::ruststream::Result<Self> {
                const FIELDS: &[&str] = &[#(#fields),*];
                const STRING_FIELDS: &[&str] = &[#(#string_fields),*];
                let mut map = ::ruststream::reexports::serde_json::Map::new();
                for (name, value) in headers.iter() {
                    let Some(name) = FIELDS.iter().find(|f| f.eq_ignore_ascii_case(name)) else {
                        continue;
                    };
                    let value = if STRING_FIELDS.contains(name) {
                        ::ruststream::reexports::serde_json::Value::String(value.to_owned())
                    } else {
                        ::ruststream::reexports::serde_json::from_str(value)
                            .unwrap_or_else(|_| ::ruststream::reexports::serde_json::Value::String(value.to_owned()))
                    };
                    map.insert((*name).to_owned(), value);
                }
                ::ruststream::reexports::serde_json::from_value(::ruststream::reexports::serde_json::Value::Object(map)).map_err(|e| {
                    ::ruststream::Error::Codec {
                        content_type: "headers".into(),
                        message: e.to_string(),
                    }
                })
            }
        }
    }
}

fn params_struct(id: &syn::Ident, channel: &Channel, address: &str) -> TokenStream {
    let mut scope = Scope::default();
    let fields: Vec<(syn::Ident, &str, TokenStream)> = channel
        .parameters
        .iter()
        .map(|p| {
            (
                ident(&scope.claim(&snake(&p.name))),
                p.name.as_str(),
                doc_or(
                    None,
                    p.description.as_deref(),
                    &format!("The `{}` parameter.", p.name.replace('`', "'")),
                ),
            )
        })
        .collect();
    let decls = fields.iter().map(|(f, _, docs)| {
        quote! {
            #docs
            pub #f: ::std::string::String,
        }
    });
    let pairs = fields
        .iter()
        .map(|(f, wire, _)| quote!((#wire, self.#f.as_str())));
    let parse_fields = fields
        .iter()
        .map(|(f, wire, _)| quote!(#f: params.get(#wire)?.to_owned(),));
    let from_fields = fields
        .iter()
        .map(|(f, wire, _)| quote!(#f: params.get(#wire).unwrap_or_default().to_owned(),));
    let doc = format!(
        " Parameters of channel `{}` (address `{}`).",
        channel.id, address
    );
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct #id {
            #(#decls)*
        }

        impl #id {
            /// The address template.
            pub const TEMPLATE: &'static str = #address;

            /// The parsed address template.
            ///
            /// # Errors
            /// Never for a template the generator accepted.
            pub fn template() -> ::core::result::Result<::ruststream::Address, ::ruststream::AddressError> {
                ::ruststream::Address::parse(Self::TEMPLATE)
            }

            /// Render the concrete address.
            ///
            /// # Errors
            /// When a value is empty or contains a reserved character.
            pub fn render(&self) -> ::core::result::Result<::std::string::String, ::ruststream::AddressError> {
                Self::template()?.render_with(&[#(#pairs),*])
            }

            /// Render the concrete address as a runtime result.
            ///
            /// # Errors
            /// [`::ruststream::Error::InvalidAddress`] when a value is empty or contains a
            /// reserved character.
            pub fn address(&self) -> ::ruststream::Result<::std::string::String> {
                self.render().map_err(|e| ::ruststream::Error::InvalidAddress {
                    address: Self::TEMPLATE.to_owned(),
                    reason: e.to_string().into(),
                })
            }

            /// Parse the parameters back out of a concrete address; `None` when it does not
            /// match the template.
            pub fn parse(address: &str) -> ::core::option::Option<Self> {
                let params = Self::template().ok()?.captures(address)?;
                ::core::option::Option::Some(Self {
                    #(#parse_fields)*
                })
            }

            /// From the parameters the router matched (missing ones are empty).
            pub fn from_params(params: &::ruststream::Params) -> Self {
                Self {
                    #(#from_fields)*
                }
            }
        }
    }
}

impl Op<'_> {
    pub(crate) fn docs(&self) -> TokenStream {
        let op = self.op;
        doc_or(
            op.title.as_deref().or(op.summary.as_deref()),
            op.description.as_deref(),
            &format!(
                "Operation `{}` on `{}`.",
                op.id.replace('`', "'"),
                self.address.replace('`', "'")
            ),
        )
    }

    pub(crate) fn receives(&self) -> bool {
        self.op.action == Action::Receive
    }
}
