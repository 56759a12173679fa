//! The normalised document model: one shape for AsyncAPI 2.x and 3.x, seen from the
//! application's point of view.
//!
//! Every node carries its source [`Location`] in a field named `source`.
//!
//! # Schema contract
//! Payload and header schemas are JSON Schema (or another format, see
//! [`Message::schema_format`]) kept as [`serde_json::Value`]. Every `$ref` inside any schema in
//! the model points into [`Document::schemas`] as `{"$ref": "#/components/schemas/<Name>"}`.
//! All `components/schemas` of the main file keep their key; any other schema reached by a
//! `$ref` gets a name from the last segment of its pointer (or the file stem), deduplicated with
//! a numeric suffix and restricted to `[A-Za-z0-9_.-]`. References are never expanded, so
//! recursive schemas stay finite. Inline payload schemas stay inline. The only exception is a
//! network reference accepted through [`crate::LoadOptions::allow_network`] without a resolver:
//! it is kept verbatim.

use std::collections::BTreeMap;

use serde_json::Value;

pub use crate::diagnostic::Location;

/// A loaded, resolved, normalised AsyncAPI document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// The `asyncapi` version the source declared, e.g. `2.6.0` or `3.0.0`.
    pub source_version: String,
    /// The document's `id`, if any.
    pub id: Option<String>,
    /// General information.
    pub info: Info,
    /// `defaultContentType`, if declared.
    pub default_content_type: Option<String>,
    /// Servers in source order.
    pub servers: Vec<Server>,
    /// Channels in source order.
    pub channels: Vec<Channel>,
    /// Operations in source order (2.x: per channel, `publish` then `subscribe`).
    pub operations: Vec<Operation>,
    /// Every message used by a channel or operation, each once, ids unique.
    pub messages: Vec<Message>,
    /// Every schema reachable by a `$ref` (see the module docs for the contract).
    pub schemas: BTreeMap<String, Value>,
    /// Security schemes by name, in source order.
    pub security_schemes: Vec<SecurityScheme>,
    /// Root-level `x-` extensions.
    pub extensions: BTreeMap<String, Value>,
    /// Where the root object is.
    pub source: Location,
}

impl Document {
    /// The channel with this id.
    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// The operation with this id.
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.id == id)
    }

    /// The message with this id.
    pub fn message(&self, id: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.id == id)
    }

    /// The server with this name.
    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The security scheme with this name.
    pub fn security_scheme(&self, name: &str) -> Option<&SecurityScheme> {
        self.security_schemes.iter().find(|s| s.name == name)
    }

    /// Resets every source [`Location`] to its default, so that two models read from
    /// different files (e.g. before and after a round trip) can be compared.
    pub fn clear_sources(&mut self) {
        let clear = |l: &mut Location| *l = Location::default();
        clear(&mut self.source);
        clear(&mut self.info.source);
        for s in &mut self.servers {
            clear(&mut s.source);
            for v in &mut s.variables {
                clear(&mut v.source);
            }
        }
        for c in &mut self.channels {
            clear(&mut c.source);
            for p in &mut c.parameters {
                clear(&mut p.source);
            }
        }
        for o in &mut self.operations {
            clear(&mut o.source);
            if let Some(r) = &mut o.reply {
                clear(&mut r.source);
            }
        }
        for m in &mut self.messages {
            clear(&mut m.source);
            if let Some(c) = &mut m.correlation_id {
                clear(&mut c.source);
            }
        }
        for s in &mut self.security_schemes {
            clear(&mut s.source);
        }
    }
}

/// `info`: title, version and the rest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Info {
    /// Title of the application.
    pub title: String,
    /// Version of the API (not of AsyncAPI).
    pub version: String,
    /// Longer description (CommonMark).
    pub description: Option<String>,
    /// Terms of service URL.
    pub terms_of_service: Option<String>,
    /// Contact information.
    pub contact: Option<Contact>,
    /// License information.
    pub license: Option<License>,
    /// Tags (2.x: root `tags`; 3.x: `info.tags`).
    pub tags: Vec<Tag>,
    /// External documentation (2.x: root `externalDocs`; 3.x: `info.externalDocs`).
    pub external_docs: Option<ExternalDocs>,
    /// `x-` extensions of `info`.
    pub extensions: BTreeMap<String, Value>,
    /// Where `info` is.
    pub source: Location,
}

/// Contact information.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    /// Name of the person or organisation.
    pub name: Option<String>,
    /// URL.
    pub url: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// License information.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct License {
    /// License name.
    pub name: String,
    /// License URL.
    pub url: Option<String>,
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tag {
    /// Tag name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// External documentation.
    pub external_docs: Option<ExternalDocs>,
}

/// A link to external documentation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExternalDocs {
    /// The URL.
    pub url: String,
    /// Description.
    pub description: Option<String>,
}

/// A server (broker) the application connects to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Server {
    /// The server's key in `servers`.
    pub name: String,
    /// Host (and port), possibly with `{variables}` (2.x: taken from `url`).
    pub host: String,
    /// Protocol, e.g. `kafka`, `mqtt`, `amqp`, `nats`.
    pub protocol: String,
    /// Protocol version.
    pub protocol_version: Option<String>,
    /// Path part (2.x: taken from `url`), e.g. `/production`.
    pub pathname: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Server variables used in `host`/`pathname`.
    pub variables: Vec<ServerVariable>,
    /// Security requirements (any one of them suffices).
    pub security: Vec<SecurityRequirement>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// External documentation.
    pub external_docs: Option<ExternalDocs>,
    /// Protocol bindings as raw JSON (`Value::Null` when absent).
    pub bindings: Value,
    /// `x-` extensions.
    pub extensions: BTreeMap<String, Value>,
    /// Where the server is.
    pub source: Location,
}

/// A server variable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerVariable {
    /// The variable name.
    pub name: String,
    /// Allowed values.
    pub enum_values: Vec<String>,
    /// Default value.
    pub default: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Examples.
    pub examples: Vec<String>,
    /// Where the variable is.
    pub source: Location,
}

/// A reference to a security scheme with the scopes it needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityRequirement {
    /// Name of the scheme in [`Document::security_schemes`].
    pub scheme: String,
    /// Required scopes (OAuth2/OpenID).
    pub scopes: Vec<String>,
}

/// A security scheme.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecurityScheme {
    /// The scheme's key (3.x inline schemes get a derived name).
    pub name: String,
    /// `type`, e.g. `userPassword`, `plain`, `oauth2`.
    pub scheme_type: String,
    /// Description.
    pub description: Option<String>,
    /// The whole resolved object, for the fields not modelled here.
    pub raw: Value,
    /// Where the scheme is.
    pub source: Location,
}

/// A channel: an address template with parameters and the messages that flow over it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Channel {
    /// The channel's key (2.x: the channel name, which is also its address).
    pub id: String,
    /// Address template, e.g. `user/{userId}/signedup`; `None` when dynamic/unknown.
    pub address: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Names of the servers this channel is available on (empty: all).
    pub servers: Vec<String>,
    /// Address parameters, in source order.
    pub parameters: Vec<Parameter>,
    /// Ids (in [`Document::messages`]) of the messages of this channel.
    pub messages: Vec<String>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// External documentation.
    pub external_docs: Option<ExternalDocs>,
    /// Protocol bindings as raw JSON (`Value::Null` when absent).
    pub bindings: Value,
    /// `x-` extensions.
    pub extensions: BTreeMap<String, Value>,
    /// Where the channel is.
    pub source: Location,
}

/// A parameter of a channel address (`{name}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parameter {
    /// Parameter name as used in the address braces.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Allowed values (2.x: the schema's `enum`).
    pub enum_values: Vec<String>,
    /// Default value (2.x: the schema's `default`).
    pub default: Option<String>,
    /// Examples.
    pub examples: Vec<String>,
    /// Runtime expression telling where in the message the value is, e.g.
    /// `$message.payload#/user/id`.
    pub location: Option<String>,
    /// Where the parameter is.
    pub source: Location,
}

/// What the application does in an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// The application sends (2.x `subscribe`).
    #[default]
    Send,
    /// The application receives (2.x `publish`).
    Receive,
}

impl Action {
    /// `"send"` or `"receive"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Receive => "receive",
        }
    }
}

/// An operation of the application on a channel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Operation {
    /// Operation id (3.x: the key; 2.x: `operationId`, or `<publish|subscribe><Channel>`).
    pub id: String,
    /// Send or receive, from the application's point of view.
    pub action: Action,
    /// Id of the channel.
    pub channel: String,
    /// Ids of the messages this operation handles (all the channel's when the source lists none).
    pub messages: Vec<String>,
    /// The reply, for request/reply operations.
    pub reply: Option<OperationReply>,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Security requirements.
    pub security: Vec<SecurityRequirement>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// External documentation.
    pub external_docs: Option<ExternalDocs>,
    /// Protocol bindings as raw JSON (`Value::Null` when absent), traits merged.
    pub bindings: Value,
    /// `x-` extensions.
    pub extensions: BTreeMap<String, Value>,
    /// Where the operation is.
    pub source: Location,
}

/// The reply of a request/reply operation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperationReply {
    /// Id of the reply channel.
    pub channel: Option<String>,
    /// Reply address: a runtime expression (e.g. `$message.header#/replyTo`), taken from
    /// `reply.address.location`.
    pub address: Option<String>,
    /// Ids of the reply messages (all the reply channel's when the source lists none).
    pub messages: Vec<String>,
    /// Where the reply is.
    pub source: Location,
}

/// A message: payload and headers schemas, content type, correlation id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// Unique id (3.x: the `components/messages` key or the channel's message key; 2.x: the
    /// component key, `messageId`, `name`, or `<operationId>Message`).
    pub id: String,
    /// Machine-friendly name.
    pub name: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Content type, resolved against `defaultContentType`, falling back to
    /// `application/json`.
    pub content_type: String,
    /// Payload schema (see the schema contract in the module docs).
    pub payload: Option<Value>,
    /// Headers schema (JSON Schema of an object).
    pub headers: Option<Value>,
    /// Correlation id.
    pub correlation_id: Option<CorrelationId>,
    /// Payload schema format when it is not the default AsyncAPI/JSON Schema one.
    pub schema_format: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// External documentation.
    pub external_docs: Option<ExternalDocs>,
    /// Examples, raw.
    pub examples: Vec<Value>,
    /// Protocol bindings as raw JSON (`Value::Null` when absent), traits merged.
    pub bindings: Value,
    /// `x-` extensions.
    pub extensions: BTreeMap<String, Value>,
    /// Where the message is.
    pub source: Location,
}

/// Where a message's correlation id is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CorrelationId {
    /// Runtime expression, e.g. `$message.header#/correlationId`.
    pub location: String,
    /// Description.
    pub description: Option<String>,
    /// Where the correlation id object is.
    pub source: Location,
}
