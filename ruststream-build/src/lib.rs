//! Generate typed RustStream code from an AsyncAPI document, from `build.rs`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     ruststream_build::Config::new().compile("asyncapi.yaml")?;
//!     Ok(())
//! }
//! ```
//! and in the crate, `mod spec { ruststream::include_spec!("streetlights"); }` where the name
//! is [`Config::module_name`] (by default the document's `info.title`, snake-cased).
//!
//! What is generated, for a document with schemas, messages, channels and operations:
//! - one serde type per schema (see [Schema mapping](#schema-mapping));
//! - `messages::<message>` modules with `NAME`, `CONTENT_TYPE`, `CORRELATION_ID` and the
//!   `Payload` (and `Headers`) type aliases; typed headers get `to_headers`/`from_headers`;
//! - one `<Channel>Params` struct per parameterised channel, rendering and parsing addresses;
//! - application side: a `Handler` trait with one method per operation the application
//!   receives, named after the operation id (`fn on_x<C: Connection>(&self, message,
//!   [headers,] [params,] ctx: Context<C>) -> impl Future<Output = Result<(), HandlerError>> +
//!   Send`; reply operations return `Result<Reply, HandlerError>`), `register(&mut router,
//!   handler)` (a missing method does not compile), and a `Publisher<C>` with one
//!   `async fn <op>(&self, [params,] &message, [&headers])` per operation it sends
//!   (`Publisher::new(connection)`, or in a handler `Publisher::from_context(&ctx)` so the
//!   publish goes through the router's middleware with the correlation id and trace context);
//! - client side: a `Client<C>` with, per operation the application receives, a publish
//!   method (or a `request` method `(&self, [params,] &message, timeout) -> Result<Reply>`
//!   when it replies), and per operation it sends, `subscribe_<op>(options)` returning a stream
//!   of decoded messages;
//! - an operation with several messages takes an untagged `<Op>Message` enum (one variant per
//!   message); its `decode(content_type, payload)`, which `register` uses, tries the messages
//!   declared with the message's content type first, then the others in order; typed headers
//!   are passed for single-message operations only;
//! - `BINDINGS`: per operation that has any, its channel, operation and message bindings as
//!   raw JSON (`&[(operation id, json)]`); `register` applies an operation's NATS `queue`
//!   binding as the route's queue group;
//! - `ADDRESSES`: `(operation id, address template)` of every operation whose channel has an
//!   address, so broker configurations that take per-operation addresses need none by hand
//!   (`ruststream_mqtt::Config::default().with_spec_bindings(BINDINGS, ADDRESSES)`);
//! - `SERVERS` (when the document has servers): each server's name, protocol, host, pathname
//!   and variable defaults as a `ruststream::broker::url::ServerSpec`, whose `url` an app's
//!   `--server <name>` hands to a broker crate's `Config::from_url`;
//! - `ASYNCAPI_JSON`: the normalised document as AsyncAPI 3.0 JSON.
//!
//! [`Config::compile`] prints a `cargo:warning` naming the operation for every field of an
//! AMQP, MQTT, NATS or Kafka binding that the AsyncAPI binding does not define.
//!
//! Generated code names only `::ruststream` (and `::std`): serde, `serde_json` and
//! `futures_core` are reached through `::ruststream::reexports` (serde's derives carry
//! `#[serde(crate = "::ruststream::reexports::serde")]`), so the including crate depends on
//! `ruststream` alone. Every generated item carries `#[allow(dead_code)]`: a binary that uses
//! part of the API gets no warnings.
//!
//! ## Schema mapping
//!
//! - `type: object` with `properties` → a struct; properties not in `required` become
//!   `Option<T>` with `#[serde(default, skip_serializing_if = "Option::is_none")]`.
//!   `additionalProperties: false` → `#[serde(deny_unknown_fields)]`; a schema (or `true`) →
//!   a `#[serde(flatten)] additional_properties: BTreeMap<String, T>` field; absent → unknown
//!   properties are ignored. An object without properties is a `BTreeMap<String, T>` (or a
//!   `serde_json::Map` when nothing says what the values are).
//! - `enum` of strings → a fieldless enum with `#[serde(rename)]` per value; other `enum`s and
//!   `const` use the underlying type.
//! - `oneOf` → an enum: internally tagged (`#[serde(tag = "..")]`, variant fields inlined without
//!   the tag) when a `discriminator` or a property with a distinct `const`/single-value `enum` in
//!   every variant tells the variants apart; otherwise `#[serde(untagged)]` (first match wins).
//!   A `{type: null}` variant makes the whole enum `Option<..>`.
//! - `anyOf` → an untagged enum (the first variant that matches wins; values matching several
//!   variants decode as the first). `allOf` → one struct with the properties of every part
//!   merged (refs followed), `required` unioned; a single-part `allOf` is that part's type.
//! - `type: [T, "null"]` and `nullable: true` → `Option<T>`. Other multi-type unions and schemas
//!   without a type (or `not`) → `serde_json::Value`.
//! - Arrays → `Vec<T>`; `items: [..]`/`prefixItems` → tuples. Integers: `i64` by default,
//!   `int8`..`int64` and `uint8`..`uint64` formats map to their Rust types; numbers: `f64`,
//!   `float` → `f32`. Strings are `String` whatever their format unless [`Formats`] opts in to
//!   chrono, `time` (`date-time` properties as `time::OffsetDateTime`, RFC 3339) or uuid types.
//! - `$ref` to `#/components/schemas/X` → the type named after `X`; `Box` only where a
//!   containment cycle (not broken by a `Vec` or map) exists.
//! - Names: component keys, else `title`, else parent type + property name. Never numbered
//!   anonymous names; collisions get a numeric suffix.
//! - `default` (scalars, string enums, empty arrays and maps) fills a missing property on
//!   decode: the field is not an `Option`, `#[serde(default = "Type::default_<field>")]`
//!   calls the generated `default_<field>()`, and the struct's `Default` uses it. Nullable
//!   properties with a default are `Option`s defaulting to `Some(value)` (explicit `null` is
//!   `None`), as pydantic's `Optional[T] = value`.
//!
//! ## Validation
//!
//! On by default ([`Config::validate`], [`Config::skip_validation`]): every struct and enum
//! implements `ruststream::validate::Validate`, whose `validate` checks, with violations
//! reported as JSON pointer + sentence (`/amount: must be > 0, got -3`):
//! `minimum`, `maximum`, `exclusiveMinimum`/`exclusiveMaximum` (numbers, and the draft-4
//! booleans), `multipleOf`, `minLength`/`maxLength` (in characters), `pattern` (compiled once,
//! with the `regex` crate; a pattern it cannot compile is not checked), `format` (`date-time`,
//! `date`, `time`, `email`, `uuid`, `uri`, `ipv4`, `ipv6`; others are annotations), `const`
//! and `enum` of strings and numbers (string enums are Rust enums: serde refuses other values),
//! `minItems`/`maxItems`/`uniqueItems`, `minProperties`/`maxProperties`, and the same inside
//! arrays, maps, nullable values, `oneOf`/`anyOf` variants and `allOf` merges, down to 24
//! levels of inline schemas. `required` is enforced by decoding, also for nullable properties
//! (absent is refused, `null` is `None`); `additionalProperties: false` by
//! `deny_unknown_fields`. Received messages whose payload type is a generated struct or enum
//! are validated (a payload that is an alias of a primitive or a `Vec` is not), as are typed
//! headers, channel parameters with an `enum` and replies (a handler's invalid reply is not
//! sent; a client's request refuses an invalid reply). Not validated: the messages of a
//! client's `subscribe_<op>` stream, `patternProperties`, `not`, `if`/`then`/`else`,
//! `contains`, `dependentRequired`, tuple (`prefixItems`) items, and an untagged union is
//! validated as the variant serde picked (the first that decodes), not retried as the next.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod bindings;
mod generate;
mod naming;
mod service;
mod types;

pub use types::Formats;

/// Which half of the conversation to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    /// The application described by the document: handler trait, `register`, publisher.
    Application,
    /// A client of that application: the mirror.
    Client,
    /// Both.
    #[default]
    Both,
}

impl Side {
    pub(crate) fn app(self) -> bool {
        matches!(self, Side::Application | Side::Both)
    }

    pub(crate) fn client(self) -> bool {
        matches!(self, Side::Client | Side::Both)
    }
}

/// Why code could not be generated.
///
/// `Debug` prints the same text as `Display`, so a `build.rs` whose `main` returns this error
/// shows the formatted diagnostics rather than a struct dump.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is invalid; the diagnostics read like compiler errors.
    #[error("invalid AsyncAPI document\n\n{0}")]
    Spec(asyncapi::Diagnostics),
    /// A builder option is wrong (e.g. an attribute or type path that does not parse).
    #[error("invalid ruststream-build option: {0}")]
    Config(String),
    /// Writing the output failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `OUT_DIR` is not set (not in a build script) and no [`Config::out_dir`] was given.
    #[error("OUT_DIR is not set; call Config::out_dir when not running in build.rs")]
    NoOutDir,
    /// The generator produced code that does not parse: a bug, please report it.
    #[error("internal code generation error (please report): {0}")]
    Internal(String),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Code generation options, a builder in the style of `prost-build`/`tonic-build`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    side: Side,
    module_name: Option<String>,
    type_attributes: Vec<(String, String)>,
    replace_types: BTreeMap<String, String>,
    formats: Formats,
    allow_network_refs: bool,
    root: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    /// `true` to skip the `cargo:rerun-if-changed` lines.
    quiet: bool,
    format_threads: usize,
    /// `false` when [`Config::validate`] turned validation off.
    no_validation: bool,
    /// Messages (ids) and payload schemas (component keys or type names) not validated.
    skip_validation: Vec<String>,
}

/// The result of generating code for one document.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The module name (output file stem).
    pub module_name: String,
    /// The formatted Rust source.
    pub code: String,
    /// Every file the document's `$ref` graph read.
    pub files: Vec<PathBuf>,
    /// Warnings the model reported.
    pub warnings: asyncapi::Diagnostics,
}

impl Config {
    /// Defaults: both sides, module name from `info.title`, all formats as `String`, no network
    /// references, output to `$OUT_DIR`.
    pub fn new() -> Self {
        Config::default()
    }

    /// Which side to generate (default [`Side::Both`]).
    pub fn side(mut self, side: Side) -> Self {
        self.side = side;
        self
    }

    /// Output file stem (`$OUT_DIR/<name>.rs`); default: `info.title` snake-cased, or the
    /// spec's file stem when the title gives no identifier.
    pub fn module_name(mut self, name: impl Into<String>) -> Self {
        self.module_name = Some(name.into());
        self
    }

    /// Add an attribute (e.g. `#[derive(Hash)]`) to the type generated for a schema, named by
    /// its component key or its Rust name; `.` means every schema type.
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.type_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Use an existing Rust type (a path such as `crate::Money`) for a component schema instead
    /// of generating one.
    pub fn replace_type(mut self, schema: impl Into<String>, rust_type: impl Into<String>) -> Self {
        self.replace_types.insert(schema.into(), rust_type.into());
        self
    }

    /// String format mappings (default: every format is `String`).
    pub fn formats(mut self, formats: Formats) -> Self {
        self.formats = formats;
        self
    }

    /// Allow `http(s)://` references (default: refused with an error).
    pub fn allow_network_refs(mut self, allow: bool) -> Self {
        self.allow_network_refs = allow;
        self
    }

    /// The folder file references may not leave (default: the spec's folder). Set it to a
    /// common parent for multi-file projects that share files with `../`.
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = Some(dir.into());
        self
    }

    /// Write output here instead of `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Format the code of large documents (hundreds of operations, messages and schemas) on
    /// this many threads (default 1: the calling thread). Output is identical whatever the
    /// count. More threads only pay off on idle cores: each thread plans the whole file, and
    /// in a parallel `cargo build` or on a loaded machine the cores are busy anyway.
    pub fn format_threads(mut self, threads: usize) -> Self {
        self.format_threads = threads;
        self
    }

    /// Validate messages against their schemas (default: on). Every generated struct and enum
    /// implements `ruststream::validate::Validate` (one `validate` per type, checking what its
    /// schema says); `register` decodes received messages with `ruststream::validate::decode`
    /// (an invalid message is settled by the route's `DecodePolicy`, counted in
    /// `validation_failures` and never reaches the handler), and publishers refuse invalid
    /// messages with `Error::Validation` before they are encoded. Off: no `Validate` impls,
    /// no checks, and an absent required nullable property decodes as `None`.
    pub fn validate(mut self, on: bool) -> Self {
        self.no_validation = !on;
        self
    }

    /// Receive and send the message with this id (or whose payload is this component schema
    /// or Rust type) without validating it; its types still implement `Validate`.
    pub fn skip_validation(mut self, message_or_schema: impl Into<String>) -> Self {
        self.skip_validation.push(message_or_schema.into());
        self
    }

    /// Print `cargo:rerun-if-changed` lines from [`Config::compile`] (default: on).
    pub fn emit_rerun_if_changed(mut self, on: bool) -> Self {
        self.quiet = !on;
        self
    }

    /// Generate code for the spec at `path` and write `<out_dir>/<module_name>.rs`; prints
    /// one `cargo:rerun-if-changed` line per file read (the only output: this is for build.rs).
    /// Returns the path written.
    ///
    /// # Errors
    /// [`Error::Spec`] with the formatted diagnostics when the document is invalid, and the
    /// other [`Error`] variants for options and I/O.
    pub fn compile(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path.as_ref();
        let generated = self.generate(path);
        // Files must be watched even when the document is invalid, so a fix triggers a rebuild.
        let files = match &generated {
            Ok(g) => g.files.clone(),
            Err(_) => vec![path.to_path_buf()],
        };
        if !self.quiet {
            let mut seen = std::collections::BTreeSet::new();
            for file in files {
                if seen.insert(file.clone()) {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
            }
        }
        let generated = generated?;
        // Binding fields the AsyncAPI bindings do not define: never silently ignored.
        for warning in generated.warnings.warnings() {
            if warning
                .message
                .contains("is not defined by the AsyncAPI binding")
            {
                let line = warning.line.map(|l| format!(":{l}")).unwrap_or_default();
                println!(
                    "cargo:warning={}{line}: {}",
                    warning.file.display(),
                    warning.message
                );
            }
        }
        let dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let out = dir.join(format!("{}.rs", generated.module_name));
        std::fs::write(&out, generated.code).map_err(|source| Error::Io {
            path: out.clone(),
            source,
        })?;
        Ok(out)
    }

    /// Generate the code for the spec at `path` and return it as a string.
    ///
    /// # Errors
    /// As [`Config::compile`], without the I/O of writing.
    pub fn generate_string(&self, path: impl AsRef<Path>) -> Result<String> {
        self.generate(path.as_ref()).map(|g| g.code)
    }

    /// Generate the code for the spec at `path`, with the files read and the warnings.
    ///
    /// # Errors
    /// As [`Config::generate_string`].
    pub fn generate(&self, path: &Path) -> Result<Generated> {
        let loaded = asyncapi::load(path, &self.load_options(path))
            .map_err(|d| Error::Spec(library_hints(d)))?;
        self.generate_loaded(loaded, path)
    }

    /// Like [`Config::generate`], from the document's text; `virtual_path` names it in
    /// diagnostics and is the base for relative references (read from disk).
    ///
    /// # Errors
    /// As [`Config::generate_string`].
    pub fn generate_str(&self, text: &str, virtual_path: &Path) -> Result<Generated> {
        let loaded = asyncapi::load_str(text, virtual_path, &self.load_options(virtual_path))
            .map_err(|d| Error::Spec(library_hints(d)))?;
        self.generate_loaded(loaded, virtual_path)
    }

    /// The loader's options; without [`Config::root`], in a build script, the root is the
    /// Cargo workspace's folder when it holds the spec (else the loader's default).
    fn load_options(&self, spec: &Path) -> asyncapi::LoadOptions {
        let root = self.root.clone().or_else(|| {
            let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
            let workspace = workspace_root(&manifest);
            let spec = std::path::absolute(spec).ok()?;
            spec.starts_with(&workspace).then_some(workspace)
        });
        asyncapi::LoadOptions {
            allow_network: self.allow_network_refs,
            root,
            ..Default::default()
        }
    }

    fn generate_loaded(&self, loaded: asyncapi::Loaded, path: &Path) -> Result<Generated> {
        let module_name = match &self.module_name {
            Some(name) => name.clone(),
            None => default_module_name(&loaded.document.info.title, path),
        };
        let code = generate::generate(&loaded.document, self)?;
        Ok(Generated {
            module_name,
            code,
            files: loaded.files,
            warnings: asyncapi::Diagnostics({
                let mut warnings = loaded.warnings;
                warnings.extend(bindings::check(&loaded.document));
                warnings
            }),
        })
    }

    pub(crate) fn format_threads_setting(&self) -> usize {
        self.format_threads.max(1)
    }

    /// Whether the message `id` with payload type `payload` (tokens) is validated.
    pub(crate) fn validates_message(&self, id: &str, payload: &str) -> bool {
        !self.no_validation
            && !self
                .skip_validation
                .iter()
                .any(|s| s == id || s == payload || naming::pascal(s) == payload)
    }

    pub(crate) fn side_setting(&self) -> Side {
        self.side
    }

    pub(crate) fn type_options(&self) -> Result<types::TypeOptions> {
        let mut replace = BTreeMap::new();
        for (schema, ty) in &self.replace_types {
            let parsed: syn::Type = syn::parse_str(ty)
                .map_err(|e| Error::Config(format!("replace_type({schema:?}, {ty:?}): {e}")))?;
            replace.insert(schema.clone(), quote::quote!(#parsed));
        }
        let mut attributes = Vec::new();
        for (path, attr) in &self.type_attributes {
            let tokens: proc_macro2::TokenStream = attr
                .parse()
                .map_err(|e| Error::Config(format!("type_attribute({path:?}, {attr:?}): {e}")))?;
            let check = quote::quote!(#tokens struct Probe;);
            syn::parse2::<syn::ItemStruct>(check).map_err(|e| {
                Error::Config(format!(
                    "type_attribute({path:?}, {attr:?}) is not an attribute such as `#[derive(Hash)]`: {e}"
                ))
            })?;
            attributes.push((path.clone(), tokens));
        }
        Ok(types::TypeOptions {
            formats: self.formats.clone(),
            replace,
            attributes,
            validate: !self.no_validation,
        })
    }
}

/// The folder of the workspace `manifest_dir`'s package belongs to: the nearest ancestor whose
/// `Cargo.toml` has a `[workspace]` table, else `manifest_dir`.
fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// The loader's hints name `LoadOptions` fields; a `ruststream-build` user sets `Config`.
fn library_hints(mut diagnostics: asyncapi::Diagnostics) -> asyncapi::Diagnostics {
    for d in &mut diagnostics.0 {
        if let Some(hint) = &mut d.hint {
            *hint = hint
                .replace("set `LoadOptions::root`", "call `Config::root`")
                .replace(
                    ", or set `LoadOptions::allow_outside_root`",
                    " (a folder above every file the spec references)",
                )
                .replace(
                    "set `LoadOptions::allow_network`",
                    "call `Config::allow_network_refs(true)`",
                );
        }
    }
    diagnostics
}

fn default_module_name(title: &str, path: &Path) -> String {
    let from_title = naming::snake(title);
    if !title.trim().is_empty() && from_title != "field" {
        return from_title;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    naming::snake(&stem)
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Application => "app",
            Side::Client => "client",
            Side::Both => "both",
        })
    }
}
