//! Document → one Rust file: types, messages, channel parameters, application and client.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use asyncapi::{Action, Channel, Document, Message, Operation};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::naming::{Scope, doc_or, ident, pascal, snake};
use crate::types::{BracedKind, TypeGen, TypeItem};
use crate::{Config, Error, Result};

/// Names the generated file defines itself; schema types never take them.
const RESERVED: &[&str] = &[
    "Handler",
    "Publisher",
    "Client",
    "ASYNCAPI_JSON",
    "BINDINGS",
    "ADDRESSES",
    "SERVERS",
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
    /// The payload is validated (its type implements `Validate`, the config validates it).
    validated: bool,
    /// The headers type implements `Validate`.
    headers_validated: bool,
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
    /// The message type is validated on receive and send.
    pub(crate) validate: bool,
    /// The headers type is validated on receive and send.
    pub(crate) validate_headers: bool,
    /// The parameters struct is validated (some parameter has an `enum`).
    pub(crate) validate_params: bool,
}

pub(crate) struct ReplyInfo {
    pub(crate) message: TokenStream,
    pub(crate) content_type: String,
    pub(crate) address: Option<String>,
    /// The reply type is validated (by the handler's side before sending, by the client on
    /// receipt).
    pub(crate) validate: bool,
}

/// The raw bindings of an operation, its channel and its messages as one JSON object (only
/// the parts that have bindings); `None` when there are none.
fn op_bindings(
    messages_by_id: &HashMap<&str, &Message>,
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
        .filter_map(|id| messages_by_id.get(id.as_str()).copied())
        .filter(|m| present(&m.bindings))
        .map(|m| (m.id.clone(), m.bindings.clone()))
        .collect();
    if !messages.is_empty() {
        out.insert("messages".into(), Value::Object(messages));
    }
    (!out.is_empty()).then(|| Value::Object(out).to_string())
}

/// `SERVERS`: the document's servers with their variables' defaults, so the runtime can pick
/// one by name (`--server`) and hand its URL to a broker crate's `Config::from_url`.
fn servers_table(doc: &Document) -> TokenStream {
    let servers = doc.servers.iter().map(|s| {
        let (name, protocol, host) = (&s.name, &s.protocol, &s.host);
        let pathname = s.pathname.as_deref().unwrap_or("");
        let variables = s.variables.iter().map(|v| {
            let (name, default) = (&v.name, v.default.as_deref().unwrap_or(""));
            quote!((#name, #default))
        });
        quote! {
            ::ruststream::broker::url::ServerSpec::new(#name, #protocol, #host, #pathname, &[#(#variables),*])
        }
    });
    quote! {
        /// The document's servers (name, protocol, host, pathname, variables with their
        /// defaults): `ServerSpec::url` renders one's URL for a broker crate's
        /// `Config::from_url`; an app's `--server <name>` picks one
        /// (`ruststream::app::run_cli_with_servers`).
        pub const SERVERS: &[::ruststream::broker::url::ServerSpec] = &[#(#servers),*];
    }
}

/// Generate the formatted Rust file for `doc`.
///
/// The file is formatted piece by piece (an item, a run of items, or a run of the methods of one
/// of the large `impl`/`trait`/`mod` blocks) so that no syntax tree of the whole file is ever
/// built and text that repeats is formatted once; large documents can be formatted on several
/// threads ([`Config::format_threads`]). Every piece's text is what
/// `prettyplease` prints for it inside the whole file, so the output does not depend on the
/// split or the thread count.
pub(crate) fn generate(doc: &Document, config: &Config) -> Result<String> {
    ref_only_cycles(doc)?;
    let pieces = doc.operations.len() + doc.messages.len() + doc.schemas.len();
    let threads = if pieces < PARALLEL_FROM {
        1
    } else {
        config.format_threads_setting()
    };
    let body = render(doc, config, threads, CHUNK)?;
    Ok(format!(
        "// @generated by ruststream-build from AsyncAPI document `{}` version {}. Do not edit.\n{}",
        doc.info.title.replace(['\n', '\r'], " "),
        doc.info.version.replace(['\n', '\r'], " "),
        allow_dead_code(&body)
    ))
}

/// `body` with `#[allow(dead_code)]` right before every top-level item (a struct, enum, trait,
/// fn, const, type, module or impl at the start of a line; impls and modules cover their
/// members): a binary that uses part of the generated API gets no warnings.
fn allow_dead_code(body: &str) -> String {
    const ITEMS: [&str; 10] = [
        "pub struct ",
        "pub enum ",
        "pub trait ",
        "pub fn ",
        "pub const ",
        "pub type ",
        "pub mod ",
        "pub static ",
        "impl ",
        "impl<",
    ];
    let mut out = String::with_capacity(body.len() + body.len() / 32);
    for line in body.split_inclusive('\n') {
        if ITEMS.iter().any(|item| line.starts_with(item)) {
            out.push_str("#[allow(dead_code)]\n");
        }
        out.push_str(line);
    }
    out
}

/// Items (or block members) formatted together.
const CHUNK: usize = 24;
/// Documents with fewer operations + messages + schemas are formatted on the calling thread.
const PARALLEL_FROM: usize = 300;

/// The formatted items of `doc` (without the header line), on `threads` threads.
pub(crate) fn render(
    doc: &Document,
    config: &Config,
    threads: usize,
    chunk: usize,
) -> Result<String> {
    let threads = threads.max(1);
    let (plan_fragments, mut texts) = if threads == 1 {
        let plan = Plan::new(doc, config)?;
        let fragments = plan.fragments(chunk);
        let texts = fragments
            .iter()
            .map(|f| plan.render(f))
            .collect::<Result<Vec<_>>>()?;
        (fragments, texts)
    } else {
        // Each thread plans the file itself (syntax trees cannot cross threads) and takes the
        // next unformatted fragment until none is left, so a thread that gets little CPU
        // (a loaded machine) only delays the fragments it took.
        let next = AtomicUsize::new(0);
        let (fragments, texts) = std::thread::scope(|scope| {
            let next = &next;
            let workers: Vec<_> = (1..threads)
                .map(|_| scope.spawn(move || worker(doc, config, chunk, next)))
                .collect();
            let plan = Plan::new(doc, config)?;
            let fragments = plan.fragments(chunk);
            let mut texts: Vec<Option<Piece>> = vec![None; fragments.len()];
            for (i, piece) in take_fragments(&plan, &fragments, next) {
                texts[i] = Some(piece?);
            }
            for handle in workers {
                let done = handle
                    .join()
                    .map_err(|_| Error::Internal("a formatting thread panicked".into()))??;
                for (i, piece) in done {
                    texts[i] = Some(piece);
                }
            }
            Ok::<_, Error>((fragments, texts))
        })?;
        let texts = texts
            .into_iter()
            .map(|t| t.ok_or_else(|| Error::Internal("a piece was not formatted".into())))
            .collect::<Result<Vec<_>>>()?;
        (fragments, texts)
    };
    // A block whose members did not split cleanly is printed whole, once, in place of all of
    // its fragments.
    let mut whole: HashMap<usize, String> = HashMap::new();
    for text in &mut texts {
        if let Piece::Whole(block, t) = text {
            whole.entry(*block).or_insert_with(|| std::mem::take(t));
        }
    }
    let mut printed = std::collections::HashSet::new();
    let mut out = String::new();
    for (fragment, text) in plan_fragments.iter().zip(&texts) {
        match (fragment, text) {
            (Fragment::Members { block, .. }, _) if whole.contains_key(block) => {
                if printed.insert(*block) {
                    out.push_str(&whole[block]);
                }
            }
            (_, Piece::Text(t)) => out.push_str(t),
            (_, Piece::Whole(..)) => {}
        }
    }
    Ok(out)
}

/// A formatting thread: plan, then format fragments until none is left.
fn worker(
    doc: &Document,
    config: &Config,
    chunk: usize,
    next: &AtomicUsize,
) -> Result<Vec<(usize, Piece)>> {
    let plan = Plan::new(doc, config)?;
    let fragments = plan.fragments(chunk);
    take_fragments(&plan, &fragments, next)
        .map(|(i, piece)| piece.map(|p| (i, p)))
        .collect()
}

/// Format the fragments not yet taken by another thread.
fn take_fragments<'p>(
    plan: &'p Plan<'_>,
    fragments: &'p [Fragment],
    next: &'p AtomicUsize,
) -> impl Iterator<Item = (usize, Result<Piece>)> + 'p {
    std::iter::from_fn(move || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let fragment = fragments.get(i)?;
        Some((i, plan.render(fragment)))
    })
}

/// The formatted text of a fragment.
#[derive(Debug, Clone)]
enum Piece {
    /// The fragment's part of the file.
    Text(String),
    /// The block could not be split: this is the whole block (block index).
    Whole(usize, String),
}

/// A contiguous part of the file, formatted on its own.
#[derive(Debug, Clone)]
enum Fragment {
    /// Top-level parts `start..end` (all [`Part::Item`]).
    Items(usize, usize),
    /// Members `start..end` of the block at part `block`.
    Members {
        block: usize,
        start: usize,
        end: usize,
    },
}

/// One top-level part of the file, in output order.
enum Part<'d> {
    Item(Item<'d>),
    Block(Block),
}

/// A top-level item, built when its fragment is formatted.
enum Item<'d> {
    /// Built while planning; taken (not copied) when formatted.
    Tokens(std::cell::Cell<TokenStream>),
    /// A schema type, taken when formatted.
    Type(std::cell::Cell<Option<TypeItem>>),
    Params {
        id: syn::Ident,
        channel: &'d Channel,
        address: String,
    },
    PublisherStruct,
    ClientStruct,
    Bindings,
    Addresses,
    /// `ASYNCAPI_JSON`: written as text (formatting a megabyte literal is wasted work).
    Json,
}

/// A large item whose members are formatted in runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Messages,
    Handler,
    Register,
    PublisherImpl,
    ClientImpl,
}

/// Everything needed to build any part of the file.
struct Plan<'d> {
    doc: &'d Document,
    parts: Vec<Part<'d>>,
    message_modules: Vec<MessageModule<'d>>,
    ops: Vec<Op<'d>>,
    received: Vec<usize>,
    sent: Vec<usize>,
    bindings: Vec<(String, String)>,
    /// The syntax trees formatted so far (see [`format_keeping`]).
    keep: std::cell::RefCell<Vec<syn::File>>,
    /// Formatted struct fields and enum variants by token text (see [`Plan::braced_text`]).
    members_seen: std::cell::RefCell<HashMap<(BracedKind, String), String>>,
    /// Formatted parameter-struct methods by parameter list (see [`Plan::params_text`]).
    params_methods: std::cell::RefCell<HashMap<Vec<(String, String)>, String>>,
}

struct MessageModule<'d> {
    message: &'d Message,
    module: String,
    payload: TokenStream,
    headers: Option<TokenStream>,
}

impl<'d> Plan<'d> {
    fn new(doc: &'d Document, config: &Config) -> Result<Self> {
        let opts = config.type_options()?;
        let mut types = TypeGen::new(&doc.schemas, &opts, Scope::with_reserved(RESERVED));
        types.generate_components();
        let channels: HashMap<&str, &Channel> =
            doc.channels.iter().map(|c| (c.id.as_str(), c)).collect();
        let message_by_id: HashMap<&str, &Message> =
            doc.messages.iter().map(|m| (m.id.as_str(), m)).collect();

        let mut items: Vec<Item<'d>> = Vec::new();

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
            let validated = config.validates_message(&message.id, &payload.to_string())
                && types.validates(&payload);
            let headers_validated = headers.as_ref().is_some_and(|h| {
                config.validates_message(&message.id, &payload.to_string()) && types.validates(h)
            });
            if let (Some(h), Some(schema)) = (&headers, &message.headers) {
                items.push(Item::Tokens(headers_impl(h, schema, &doc.schemas).into()));
            }
            message_modules.push(MessageModule {
                message,
                module: module.clone(),
                payload: payload.clone(),
                headers: headers.clone(),
            });
            messages.insert(
                &message.id,
                MessageInfo {
                    module,
                    variant: base,
                    payload,
                    headers,
                    content_type: message.content_type.clone(),
                    validated,
                    headers_validated,
                },
            );
        }

        // Channel parameter structs.
        let mut params: HashMap<&str, TokenStream> = HashMap::new();
        let mut validated_params: Vec<&str> = Vec::new();
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
            params.insert(&channel.id, quote!(#id));
            let validate = config.validates_message("", "") && params_validated(channel);
            if validate {
                validated_params.push(channel.id.as_str());
            }
            let check = validate.then(|| params_validate(&id, channel));
            items.push(Item::Params {
                id,
                channel,
                address: address.clone(),
            });
            if let Some(check) = check {
                items.push(Item::Tokens(check.into()));
            }
        }

        // Operations.
        let mut ops = Vec::new();
        let mut bindings: Vec<(String, String)> = Vec::new();
        let mut method_scope = Scope::with_reserved(&["new", "connection", "into_inner"]);
        let mut enums = Vec::new();
        for op in &doc.operations {
            let Some(channel) = channels.get(op.channel.as_str()).copied() else {
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
            let (message, content_type, headers, validate) =
                op_message(&mut types, &mut enums, &messages, message_ids, &op.id);
            let validate_headers = headers.is_some()
                && message_ids
                    .iter()
                    .filter_map(|id| messages.get(id.as_str()))
                    .any(|m| m.headers_validated);
            let reply = op.reply.as_ref().map(|reply| {
                let reply_channel = reply
                    .channel
                    .as_deref()
                    .and_then(|c| channels.get(c).copied());
                let ids = if reply.messages.is_empty() {
                    reply_channel
                        .map(|c| c.messages.clone())
                        .unwrap_or_default()
                } else {
                    reply.messages.clone()
                };
                let (message, content_type, _, validate) = op_message(
                    &mut types,
                    &mut enums,
                    &messages,
                    &ids,
                    &format!("{}Reply", op.id),
                );
                ReplyInfo {
                    message,
                    content_type,
                    validate,
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
            if let Some(json) = op_bindings(&message_by_id, channel, op, message_ids) {
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
                validate,
                validate_headers,
                validate_params: validated_params.contains(&channel.id.as_str()),
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
        items.extend(enums.into_iter().map(|e| Item::Tokens(e.into())));

        // Client subscribe methods share the client's namespace with the publish methods.
        for op in ops.iter_mut().filter(|o| !o.receives()) {
            op.subscribe_method = method_scope.claim(&format!("subscribe_{}", snake(&op.op.id)));
        }

        let (type_items, _) = types.finish();
        let mut parts: Vec<Part<'d>> = type_items
            .into_iter()
            .map(|t| Part::Item(Item::Type(Some(t).into())))
            .collect();
        parts.push(Part::Block(Block::Messages));
        parts.extend(items.into_iter().map(Part::Item));
        let side = config.side_setting();
        if side.app() {
            parts.push(Part::Block(Block::Handler));
            parts.push(Part::Block(Block::Register));
            parts.push(Part::Item(Item::PublisherStruct));
            parts.push(Part::Block(Block::PublisherImpl));
        }
        if side.client() {
            parts.push(Part::Item(Item::ClientStruct));
            parts.push(Part::Block(Block::ClientImpl));
        }
        if !doc.servers.is_empty() {
            parts.push(Part::Item(Item::Tokens(servers_table(doc).into())));
        }
        parts.push(Part::Item(Item::Bindings));
        parts.push(Part::Item(Item::Addresses));
        parts.push(Part::Item(Item::Json));
        let received = (0..ops.len()).filter(|&i| ops[i].receives()).collect();
        let sent = (0..ops.len()).filter(|&i| !ops[i].receives()).collect();
        Ok(Plan {
            doc,
            parts,
            message_modules,
            ops,
            received,
            sent,
            bindings,
            keep: std::cell::RefCell::default(),
            params_methods: std::cell::RefCell::default(),
            members_seen: std::cell::RefCell::default(),
        })
    }

    /// The file cut into fragments of at most `chunk` items or block members.
    fn fragments(&self, chunk: usize) -> Vec<Fragment> {
        let chunk = chunk.max(1);
        let mut out = Vec::new();
        let mut run_start = None;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Item(Item::Json) => {
                    if let Some(start) = run_start.take() {
                        out.push(Fragment::Items(start, i));
                    }
                    out.push(Fragment::Items(i, i + 1));
                }
                Part::Item(_) => {
                    let start = *run_start.get_or_insert(i);
                    if i + 1 - start == chunk {
                        out.push(Fragment::Items(start, i + 1));
                        run_start = None;
                    }
                }
                Part::Block(block) => {
                    if let Some(start) = run_start.take() {
                        out.push(Fragment::Items(start, i));
                    }
                    let members = self.members(*block);
                    if members == 0 {
                        out.push(Fragment::Members {
                            block: i,
                            start: 0,
                            end: 0,
                        });
                    }
                    let mut start = 0;
                    while start < members {
                        let end = (start + chunk).min(members);
                        out.push(Fragment::Members {
                            block: i,
                            start,
                            end,
                        });
                        start = end;
                    }
                }
            }
        }
        if let Some(start) = run_start {
            out.push(Fragment::Items(start, self.parts.len()));
        }
        out
    }

    fn members(&self, block: Block) -> usize {
        match block {
            Block::Messages => self.message_modules.len(),
            Block::Handler => self.received.len(),
            Block::Register => self.received.len() + 2,
            Block::PublisherImpl => crate::service::PUBLISHER_FIXED + self.sent.len(),
            Block::ClientImpl => crate::service::CLIENT_FIXED + self.ops.len(),
        }
    }

    fn member(&self, block: Block, i: usize) -> TokenStream {
        use crate::service as s;
        match block {
            Block::Messages => {
                let m = &self.message_modules[i];
                message_module(m.message, &m.module, &m.payload, m.headers.as_ref())
            }
            Block::Handler => s::trait_method(&self.ops[self.received[i]]),
            Block::Register => {
                if i == 0 {
                    s::handler_binding(!self.received.is_empty())
                } else if i <= self.received.len() {
                    s::registration(&self.ops[self.received[i - 1]])
                } else {
                    s::register_tail()
                }
            }
            Block::PublisherImpl => match i.checked_sub(s::PUBLISHER_FIXED) {
                None => s::publisher_fixed(i),
                Some(k) => s::publisher_method(&self.ops[self.sent[k]]),
            },
            Block::ClientImpl => match i.checked_sub(s::CLIENT_FIXED) {
                None => s::client_fixed(i),
                Some(k) => s::client_method(&self.ops[k]),
            },
        }
    }

    fn wrap(block: Block, members: TokenStream) -> TokenStream {
        use crate::service as s;
        match block {
            Block::Messages => s::braced(
                quote! {
                    /// Metadata of each message: name, content type, correlation id location, types.
                    pub mod messages
                },
                members,
            ),
            Block::Handler => s::handler_trait(members),
            Block::Register => s::register_fn(members),
            Block::PublisherImpl => s::publisher_impl(members),
            Block::ClientImpl => s::client_impl(members),
        }
    }

    fn item(&self, item: &Item<'d>) -> TokenStream {
        match item {
            Item::Tokens(t) => t.take(),
            Item::Type(t) => t.take().map(TypeItem::into_tokens).unwrap_or_default(),
            Item::Params {
                id,
                channel,
                address,
            } => params_struct(id, channel, address),
            Item::PublisherStruct => crate::service::publisher_struct(),
            Item::ClientStruct => crate::service::client_struct(),
            Item::Bindings => {
                let binding_pairs = self.bindings.iter().map(|(id, json)| quote!((#id, #json)));
                quote! {
                    /// The protocol bindings of each operation that has any, as `(operation id, JSON)`:
                    /// a JSON object with the non-empty `channel`, `operation` and `messages` (message id →
                    /// bindings) bindings, raw as in the spec (e.g. NATS `queue`, MQTT `qos`/`retain`, AMQP
                    /// exchange/queue). `register` applies the NATS `queue` as the route's queue group.
                    pub const BINDINGS: &[(&str, &str)] = &[#(#binding_pairs),*];
                }
            }
            Item::Addresses => {
                let pairs = self.ops.iter().map(|op| {
                    let id = &op.op.id;
                    let address = &op.address;
                    quote!((#id, #address))
                });
                quote! {
                    /// The address template of every operation whose channel has one, as
                    /// `(operation id, address)`, in document order: what broker configurations
                    /// that apply bindings per operation take beside [`BINDINGS`] (e.g.
                    /// `ruststream_mqtt::Config::with_spec_bindings(BINDINGS, ADDRESSES)`).
                    pub const ADDRESSES: &[(&str, &str)] = &[#(#pairs),*];
                }
            }
            Item::Json => TokenStream::new(),
        }
    }

    fn format(&self, tokens: TokenStream) -> Result<String> {
        format_keeping(tokens, &mut self.keep.borrow_mut())
    }

    /// A struct or enum: its fields or variants are formatted once per distinct token text
    /// (documents repeat property names, types and docs) and their text reused.
    fn braced_text(
        &self,
        head: TokenStream,
        members: Vec<TokenStream>,
        kind: BracedKind,
    ) -> Result<String> {
        use crate::service::braced;
        let empty = self.format(braced(head.clone(), TokenStream::new()))?;
        if members.is_empty() {
            return Ok(empty);
        }
        let whole = |members: Vec<TokenStream>| {
            self.format(braced(head.clone(), members.into_iter().collect()))
        };
        let Some(open) = empty.strip_suffix("{}\n") else {
            return whole(members);
        };
        let dummy = match kind {
            BracedKind::Struct => quote!(struct S),
            BracedKind::Enum => quote!(enum S),
        };
        let mut out = format!("{open}{{\n");
        for member in &members {
            let key = (kind, member.to_string());
            if let Some(text) = self.members_seen.borrow().get(&key) {
                out.push_str(text);
                continue;
            }
            let text = self.format(braced(dummy.clone(), member.clone()))?;
            let Some(inner) = (match kind {
                BracedKind::Struct => text.strip_prefix("struct S {\n"),
                BracedKind::Enum => text.strip_prefix("enum S {\n"),
            })
            .and_then(|t| t.strip_suffix("}\n")) else {
                return whole(members);
            };
            out.push_str(inner);
            self.members_seen.borrow_mut().insert(key, inner.to_owned());
        }
        out.push_str("}\n");
        Ok(out)
    }

    /// A parameter struct and its `impl` block. The methods are formatted once per distinct
    /// list of parameters (they depend on nothing else) and their text reused: channels of
    /// one document mostly share their parameters.
    fn params_text(&self, id: &syn::Ident, channel: &Channel, address: &str) -> Result<String> {
        let fields = params_fields(channel);
        let key: Vec<(String, String)> = fields
            .iter()
            .map(|(f, wire, _)| (f.to_string(), (*wire).to_owned()))
            .collect();
        let cached = self.params_methods.borrow().get(&key).cloned();
        let methods = match cached {
            Some(text) => text,
            None => {
                let text = self.format(crate::service::braced(
                    quote!(impl #id),
                    params_methods(&fields),
                ))?;
                let empty = self.format(quote!(impl #id {}))?;
                let inner = empty.strip_suffix("{}\n").and_then(|head| {
                    text.strip_prefix(head)?
                        .strip_prefix("{\n")?
                        .strip_suffix("}\n")
                });
                let Some(inner) = inner else {
                    return self.format(params_struct(id, channel, address));
                };
                self.params_methods
                    .borrow_mut()
                    .insert(key, inner.to_owned());
                inner.to_owned()
            }
        };
        let (head, template) = params_head(id, channel, address, &fields);
        let head = self.format(quote! {
            #head
            impl #id {
                #template
            }
        })?;
        let Some(open) = head.strip_suffix("}\n") else {
            return self.format(params_struct(id, channel, address));
        };
        Ok(format!("{open}{methods}}}\n"))
    }

    fn render(&self, fragment: &Fragment) -> Result<Piece> {
        match *fragment {
            Fragment::Items(start, end) => {
                if let [Part::Item(Item::Json)] = &self.parts[start..end] {
                    let json = asyncapi::emit::to_json(self.doc);
                    return Ok(Piece::Text(format!(
                        "/// The normalised AsyncAPI 3.0 document this code was generated from, as JSON.\npub const ASYNCAPI_JSON: &str = {};\n",
                        proc_macro2::Literal::string(&json)
                    )));
                }
                let mut out = String::new();
                let mut tokens = TokenStream::new();
                for part in &self.parts[start..end] {
                    match part {
                        Part::Item(Item::Params {
                            id,
                            channel,
                            address,
                        }) => {
                            if !tokens.is_empty() {
                                out.push_str(&self.format(std::mem::take(&mut tokens))?);
                            }
                            out.push_str(&self.params_text(id, channel, address)?);
                        }
                        Part::Item(Item::Type(t)) => match t.take() {
                            Some(TypeItem::Braced {
                                head,
                                members,
                                kind,
                            }) => {
                                if !tokens.is_empty() {
                                    out.push_str(&self.format(std::mem::take(&mut tokens))?);
                                }
                                out.push_str(&self.braced_text(head, members, kind)?);
                            }
                            Some(TypeItem::Tokens(t)) => tokens.extend(t),
                            None => {}
                        },
                        Part::Item(item) => tokens.extend(self.item(item)),
                        Part::Block(_) => {}
                    }
                }
                if !tokens.is_empty() {
                    out.push_str(&self.format(tokens)?);
                }
                Ok(Piece::Text(out))
            }
            Fragment::Members { block, start, end } => {
                let Part::Block(kind) = self.parts[block] else {
                    return Err(Error::Internal("fragment is not a block".into()));
                };
                let last = end == self.members(kind);
                if start == end {
                    // An empty block is one piece.
                    return self
                        .format(Self::wrap(kind, TokenStream::new()))
                        .map(Piece::Text);
                }
                let mut members = TokenStream::new();
                for i in start..end {
                    members.extend(self.member(kind, i));
                }
                let text = self.format(Self::wrap(kind, members))?;
                let empty = self.format(Self::wrap(kind, TokenStream::new()))?;
                // `head {}\n` when empty; `head {\n<members>}\n` otherwise.
                let split = empty.strip_suffix("{}\n").and_then(|head| {
                    let inner = text.strip_prefix(head)?.strip_prefix("{\n")?;
                    let inner = inner.strip_suffix("}\n")?;
                    Some((head, inner))
                });
                match split {
                    Some((head, inner)) => {
                        let mut out = String::new();
                        if start == 0 {
                            out.push_str(head);
                            out.push_str("{\n");
                        }
                        out.push_str(inner);
                        if last {
                            out.push_str("}\n");
                        }
                        Ok(Piece::Text(out))
                    }
                    _ => {
                        let mut all = TokenStream::new();
                        for i in 0..self.members(kind) {
                            all.extend(self.member(kind, i));
                        }
                        self.format(Self::wrap(kind, all))
                            .map(|t| Piece::Whole(block, t))
                    }
                }
            }
        }
    }
}

/// `prettyplease` text of a sequence of items.
#[cfg(test)]
fn format(tokens: TokenStream) -> Result<String> {
    format_keeping(tokens, &mut Vec::new())
}

/// [`format`], keeping the syntax tree in `keep`.
///
/// Freeing each fragment's tree right away makes the allocator reuse its scattered memory for
/// the next one, which costs more (cache misses walking free lists) than carving fresh memory:
/// the trees are freed together at the end.
fn format_keeping(tokens: TokenStream, keep: &mut Vec<syn::File>) -> Result<String> {
    let file: syn::File = syn::parse2(tokens).map_err(|e| Error::Internal(e.to_string()))?;
    let text = prettyplease::unparse(&file);
    keep.push(file);
    Ok(text)
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

/// The message type, content type and headers type of an operation's message list, and
/// whether the message type is validated.
fn op_message(
    types: &mut TypeGen<'_>,
    items: &mut Vec<TokenStream>,
    messages: &BTreeMap<&str, MessageInfo>,
    ids: &[String],
    op_id: &str,
) -> (TokenStream, String, Option<TokenStream>, bool) {
    let found: Vec<&MessageInfo> = ids
        .iter()
        .filter_map(|id| messages.get(id.as_str()))
        .collect();
    match found.as_slice() {
        [] => (
            quote!(::ruststream::reexports::serde_json::Value),
            "application/json".to_owned(),
            None,
            false,
        ),
        [single] => (
            single.payload.clone(),
            single.content_type.clone(),
            single.headers.clone(),
            single.validated,
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
                let decode = if m.validated {
                    quote!(::ruststream::validate::decode::<#p>)
                } else {
                    quote!(::ruststream::codec::decode::<#p>)
                };
                quote! {
                    match #decode(content_type, payload) {
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
                #[derive(Debug, Clone, PartialEq, ::ruststream::reexports::serde::Serialize, ::ruststream::reexports::serde::Deserialize)]
                #[serde(crate = "::ruststream::reexports::serde")]
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
            let validated = several.iter().any(|m| m.validated);
            if validated {
                let arms = several.iter().zip(&names).map(|(m, v)| {
                    if m.validated {
                        quote!(Self::#v(v) => ::ruststream::validate::Validate::validate(v, path, errs),)
                    } else {
                        quote!(Self::#v(_) => {})
                    }
                });
                items.push(quote! {
                    impl ::ruststream::validate::Validate for #id {
                        fn validate(&self, path: &::ruststream::validate::Path<'_>, errs: &mut ::ruststream::validate::Violations) {
                            match self {
                                #(#arms)*
                            }
                        }
                    }
                });
            }
            // All messages of one operation share a content type in practice; the first wins.
            (
                quote!(#id),
                several[0].content_type.clone(),
                None,
                validated,
            )
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

/// Whether some parameter of `channel` has an `enum` (what a parameter struct can check).
fn params_validated(channel: &Channel) -> bool {
    channel.parameters.iter().any(|p| !p.enum_values.is_empty())
}

/// `impl Validate` for a parameter struct: each parameter with an `enum` is one of its values.
fn params_validate(id: &syn::Ident, channel: &Channel) -> TokenStream {
    let checks = params_fields(channel)
        .into_iter()
        .zip(&channel.parameters)
        .filter(|(_, p)| !p.enum_values.is_empty())
        .map(|((f, wire, _), p)| {
            let allowed = &p.enum_values;
            quote!(rt::one_of_str(&path.field(#wire), &self.#f, &[#(#allowed),*], errs);)
        });
    quote! {
        impl ::ruststream::validate::Validate for #id {
            fn validate(&self, path: &::ruststream::validate::Path<'_>, errs: &mut ::ruststream::validate::Violations) {
                use ::ruststream::validate::rt;
                #(#checks)*
            }
        }
    }
}

/// The fields of a parameter struct: identifier, wire name, docs.
fn params_fields(channel: &Channel) -> Vec<(syn::Ident, &str, TokenStream)> {
    let mut scope = Scope::default();
    channel
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
        .collect()
}

/// The parameter struct and its `impl` block, cut before the methods: the methods depend only
/// on the fields (see [`params_methods`]).
fn params_head(
    id: &syn::Ident,
    channel: &Channel,
    address: &str,
    fields: &[(syn::Ident, &str, TokenStream)],
) -> (TokenStream, TokenStream) {
    let decls = fields.iter().map(|(f, _, docs)| {
        quote! {
            #docs
            pub #f: ::std::string::String,
        }
    });
    let doc = format!(
        " Parameters of channel `{}` (address `{}`).",
        channel.id, address
    );
    let head = quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct #id {
            #(#decls)*
        }
    };
    let template = quote! {
        /// The address template.
        pub const TEMPLATE: &'static str = #address;
    };
    (head, template)
}

/// The methods of a parameter struct's `impl` block (after `TEMPLATE`).
fn params_methods(fields: &[(syn::Ident, &str, TokenStream)]) -> TokenStream {
    let pairs = fields
        .iter()
        .map(|(f, wire, _)| quote!((#wire, self.#f.as_str())));
    let parse_fields = fields
        .iter()
        .map(|(f, wire, _)| quote!(#f: params.get(#wire)?.to_owned(),));
    let from_fields = fields
        .iter()
        .map(|(f, wire, _)| quote!(#f: params.get(#wire).unwrap_or_default().to_owned(),));
    quote! {
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

/// The parameter struct and its `impl` block in one token stream.
fn params_struct(id: &syn::Ident, channel: &Channel, address: &str) -> TokenStream {
    let fields = params_fields(channel);
    let (head, template) = params_head(id, channel, address, &fields);
    let methods = params_methods(&fields);
    quote! {
        #head
        impl #id {
            #template
            #methods
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// The whole file as one syntax tree, formatted at once: what the pieces must add up to.
    fn render_whole(doc: &Document, config: &Config) -> String {
        let plan = Plan::new(doc, config).expect("plan");
        let mut tokens = TokenStream::new();
        let mut json = String::new();
        for part in &plan.parts {
            match part {
                Part::Item(Item::Json) => {
                    let doc_json = asyncapi::emit::to_json(doc);
                    json = format(quote! {
                        /// The normalised AsyncAPI 3.0 document this code was generated from, as JSON.
                        pub const ASYNCAPI_JSON: &str = #doc_json;
                    })
                    .expect("formats");
                }
                Part::Item(item) => tokens.extend(plan.item(item)),
                Part::Block(block) => {
                    let mut members = TokenStream::new();
                    for i in 0..plan.members(*block) {
                        members.extend(plan.member(*block, i));
                    }
                    tokens.extend(Plan::wrap(*block, members));
                }
            }
        }
        format(tokens).expect("formats") + &json
    }

    fn documents(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                documents(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                out.push(path);
            }
        }
    }

    /// A document whose channels share parameters and whose schemas share fields and enum
    /// values (what the formatter's text reuse is for), with names of several widths.
    fn repetitive_spec(dir: &Path) -> PathBuf {
        let mut channels = serde_json::Map::new();
        let mut operations = serde_json::Map::new();
        let mut messages = serde_json::Map::new();
        let mut schemas = serde_json::Map::new();
        for i in [1, 2, 30, 400, 5000, 60000] {
            channels.insert(
                format!("channel{i}"),
                serde_json::json!({
                    "address": format!("svc.item{i}.{{itemId}}.{{kind}}"),
                    "parameters": {"itemId": {"description": "Id."}, "kind": {}},
                    "messages": {format!("m{i}"): {"$ref": format!("#/components/messages/m{i}")}}
                }),
            );
            operations.insert(
                format!("op{i}"),
                serde_json::json!({
                    "action": if i % 2 == 0 { "receive" } else { "send" },
                    "channel": {"$ref": format!("#/channels/channel{i}")}
                }),
            );
            messages.insert(
                format!("m{i}"),
                serde_json::json!({"payload": {"$ref": format!("#/components/schemas/P{i}")}}),
            );
            schemas.insert(
                format!("P{i}"),
                serde_json::json!({
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string", "description": format!("Item {i}.")},
                        "status": {"type": "string", "enum": ["new", "old"]},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    }
                }),
            );
        }
        let doc = serde_json::json!({
            "asyncapi": "3.0.0",
            "info": {"title": "Repetitive", "version": "1.0.0"},
            "channels": channels,
            "operations": operations,
            "components": {"messages": messages, "schemas": schemas}
        });
        std::fs::create_dir_all(dir).expect("temp dir");
        let path = dir.join("repetitive.json");
        std::fs::write(&path, doc.to_string()).expect("written");
        path
    }

    #[test]
    fn pieces_add_up_to_the_whole_file() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
        let temp =
            std::env::temp_dir().join(format!("ruststream-build-pieces-{}", std::process::id()));
        let repetitive = repetitive_spec(&temp);
        if let Err(e) = asyncapi::load(&repetitive, &asyncapi::LoadOptions::default()) {
            panic!("the repetitive spec is invalid: {e}");
        }
        let mut docs = vec![repetitive];
        documents(&data.join("codegen"), &mut docs);
        documents(&data.join("asyncapi-corpus"), &mut docs);
        docs.sort();
        let mut compared = 0;
        for path in docs {
            let options = asyncapi::LoadOptions {
                root: Some(data.join("asyncapi-corpus")),
                ..Default::default()
            };
            let Ok(loaded) = asyncapi::load(&path, &options) else {
                continue;
            };
            let doc = &loaded.document;
            if ref_only_cycles(doc).is_err() {
                continue;
            }
            for side in [crate::Side::Both, crate::Side::Application] {
                let config = Config::new().side(side);
                let plan = Plan::new(doc, &config).expect("plan");
                for fragment in plan.fragments(1) {
                    let piece = plan.render(&fragment).expect("renders");
                    assert!(
                        matches!(piece, Piece::Text(_)),
                        "{}: {fragment:?} did not split",
                        path.display()
                    );
                }
                let whole = render_whole(doc, &config);
                for (threads, chunk) in [(1, 1), (3, 2)] {
                    let pieces = render(doc, &config, threads, chunk).expect("renders");
                    assert!(
                        pieces == whole,
                        "{} ({side}, {threads} threads, chunk {chunk}) differs from the whole-file formatting",
                        path.display()
                    );
                }
            }
            compared += 1;
        }
        std::fs::remove_dir_all(&temp).ok();
        assert!(compared >= 10, "only {compared} documents compared");
    }
}
