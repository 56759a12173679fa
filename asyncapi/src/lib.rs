//! AsyncAPI document model for RustStream.
//!
//! [`load`] reads an AsyncAPI 2.0–2.6, 3.0 or 3.1 document (YAML or JSON), resolves every
//! `$ref` (same document and relative files; network refused unless allowed), merges traits,
//! validates what JSON Schema cannot, and normalises both major versions into one
//! [`Document`], seen from the application's point of view. [`emit`] writes a model back out
//! as an AsyncAPI 3.0.0 document.
//!
//! ```
//! use std::path::Path;
//! let text = r#"
//! asyncapi: 3.0.0
//! info: { title: Demo, version: 1.0.0 }
//! channels:
//!   userSignedUp:
//!     address: user/signedup
//!     messages:
//!       signedUp:
//!         payload: { type: object }
//! operations:
//!   onUserSignedUp:
//!     action: receive
//!     channel: { $ref: '#/channels/userSignedUp' }
//! "#;
//! let loaded = asyncapi::load_str(text, Path::new("demo.yaml"), &Default::default()).unwrap();
//! let op = &loaded.document.operations[0];
//! assert_eq!(op.action, asyncapi::Action::Receive);
//! assert_eq!(op.messages, ["signedUp"]);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod diagnostic;
pub mod emit;
pub mod html;
mod merge;
mod model;
mod normalize;
mod official;
mod resolve;
mod schemas;
mod source;
mod validate;

pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use model::*;
pub use normalize::{FALLBACK_CONTENT_TYPE, SUPPORTED_VERSIONS};

/// The root folder [`load`] uses for the main file at `path` when [`LoadOptions::root`] is not
/// set: the nearest ancestor of its folder holding a `.git` or a `Cargo.toml`, else its folder.
pub fn default_root(path: &Path) -> PathBuf {
    resolve::default_root(path)
}

/// Fetches the text of a network (`http(s)://`) reference; given the URL without fragment.
pub type NetworkResolver = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// How [`load`] treats references that leave the local project.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Accept `http(s)://` references. With a [`LoadOptions::network_resolver`] they are
    /// fetched through it; without one they are kept verbatim (a warning says so).
    pub allow_network: bool,
    /// Accept file references that leave the root folder.
    pub allow_outside_root: bool,
    /// The root folder references may not escape; defaults to the nearest ancestor of the
    /// main file's folder that holds a `.git` or a `Cargo.toml`, else the main file's folder.
    pub root: Option<PathBuf>,
    /// Fetches network references when [`LoadOptions::allow_network`] is set.
    pub network_resolver: Option<NetworkResolver>,
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("allow_network", &self.allow_network)
            .field("allow_outside_root", &self.allow_outside_root)
            .field("root", &self.root)
            .field("network_resolver", &self.network_resolver.is_some())
            .finish()
    }
}

/// A successfully loaded document.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The normalised model.
    pub document: Document,
    /// Every file read from disk, for `cargo:rerun-if-changed`: for [`load`] the main file
    /// first; for [`load_str`] only the referenced files. Network documents are not listed.
    pub files: Vec<PathBuf>,
    /// Warnings found while loading.
    pub warnings: Vec<Diagnostic>,
}

/// Loads, resolves, validates and normalises the AsyncAPI document at `path`.
///
/// # Errors
/// Every error found (and the warnings) when the document cannot be used.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let loc = Location {
                file: path.to_path_buf(),
                ..Location::default()
            };
            return Err(Diagnostics(vec![
                Diagnostic::error(&loc, format!("cannot read `{}`: {e}", path.display()))
                    .with_hint("check the path given to the loader"),
            ]));
        }
    };
    run(&text, path, options, true)
}

/// Like [`load`], from text; `virtual_path` names the document in diagnostics and is the base
/// for relative references (which are read from disk).
///
/// # Errors
/// Every error found (and the warnings) when the document cannot be used.
pub fn load_str(
    text: &str,
    virtual_path: &Path,
    options: &LoadOptions,
) -> Result<Loaded, Diagnostics> {
    run(text, virtual_path, options, false)
}

fn run(text: &str, path: &Path, options: &LoadOptions, read: bool) -> Result<Loaded, Diagnostics> {
    let mut ctx = resolve::Ctx::new(path, options);
    if read {
        ctx.files_read.push(path.to_path_buf());
    }
    let main = ctx.add_main(text);
    if let Some(version) = main
        .as_ref()
        .and_then(|m| m.value().get("asyncapi"))
        .and_then(serde_json::Value::as_str)
    {
        ctx.version = version.to_string();
    }
    let document = main
        .clone()
        .and_then(|main| normalize::normalize(&mut ctx, main));
    // After the loader, which reports the problems of the references themselves.
    let official = match &main {
        Some(main) if !ctx.version.is_empty() => {
            let version = ctx.version.clone();
            official::validate(&mut ctx, main, &version)
        }
        _ => Vec::new(),
    };
    let mut diags = std::mem::take(&mut ctx.diags);
    if let Some(doc) = &document {
        validate::validate(doc, &mut diags);
        diags.extend(official::message_examples(doc));
    }
    official::merge(official, &mut diags);
    diags.sort_by_key(|d| d.severity);
    dedup(&mut diags);
    match document {
        Some(document) if !diags.iter().any(Diagnostic::is_error) => Ok(Loaded {
            document,
            files: ctx.files_read,
            warnings: diags,
        }),
        _ => Err(Diagnostics(diags)),
    }
}

fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    diags.retain(|d| seen.insert(d.clone()));
}
