//! Reading files and following `$ref`s: same document, relative files (YAML or JSON, any
//! depth, relative to the referring file), network only when allowed, never out of the root
//! folder unless allowed, cycles detected.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use serde_json::Value;

use crate::LoadOptions;
use crate::diagnostic::{Diagnostic, Location, child_pointer, unescape_pointer_segment};
use crate::source::{SourceFile, parse};

/// Longest chain of references followed before giving up.
const MAX_REF_CHAIN: usize = 64;

/// Most files (local or network) one load may read.
const MAX_FILES: usize = 1000;

/// A value at a place in a file.
///
/// The value is not copied: it is looked up in the file (or in a replacement value, see
/// [`Node::with_value`]) when asked for, so cloning a node or taking its children is cheap.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The file.
    pub file: Rc<SourceFile>,
    /// Pointer inside it (`/a/b`, no `#`).
    pub ptr: String,
    /// A value standing in for the file's at `ptr[..len]` (e.g. after merging traits), with
    /// that `len`; `None` when the value is the file's own.
    replaced: Option<(Rc<Value>, usize)>,
}

/// The value at the (escaped) JSON pointer `ptr` inside `root`; the same as
/// [`Value::pointer`], without allocating for segments that need no unescaping.
fn lookup<'v>(root: &'v Value, ptr: &str) -> Option<&'v Value> {
    if ptr.is_empty() {
        return Some(root);
    }
    let rest = ptr.strip_prefix('/')?;
    let bytes = rest.as_bytes();
    let mut target = root;
    let mut start = 0;
    loop {
        // One pass per segment: find its end and whether it needs unescaping.
        let mut end = start;
        let mut tilde = false;
        while let Some(&c) = bytes.get(end) {
            if c == b'/' {
                break;
            }
            tilde |= c == b'~';
            end += 1;
        }
        let raw = &rest[start..end];
        let unescaped;
        let token = if tilde {
            unescaped = unescape_pointer_segment(raw);
            unescaped.as_str()
        } else {
            raw
        };
        target = match target {
            Value::Object(m) => m.get(token)?,
            Value::Array(a) => {
                if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
                    return None;
                }
                a.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
        if end == bytes.len() {
            break;
        }
        start = end + 1;
    }
    Some(target)
}

/// `null`, for nodes whose place no longer holds a value.
static NULL: Value = Value::Null;

/// Identity of a node: its file and pointer.
pub(crate) type NodeId = (PathBuf, String);

impl Node {
    /// The node at pointer `ptr` of `file` (which must hold a value there).
    pub fn in_file(file: Rc<SourceFile>, ptr: String) -> Node {
        Node {
            file,
            ptr,
            replaced: None,
        }
    }

    /// The value.
    pub fn value(&self) -> &Value {
        let found = match &self.replaced {
            None => lookup(&self.file.value, &self.ptr),
            Some((v, len)) => lookup(v, &self.ptr[*len..]),
        };
        found.unwrap_or(&NULL)
    }

    /// The node at `ptr`, a pointer below this one's, inside the same value.
    pub fn below(&self, ptr: String) -> Node {
        Node {
            file: self.file.clone(),
            ptr,
            replaced: self.replaced.clone(),
        }
    }

    /// Where this node is.
    pub fn loc(&self) -> Location {
        self.file.location(&self.ptr)
    }

    /// Where the child `key` is (or would be).
    pub fn loc_of(&self, key: &str) -> Location {
        self.file.location(&child_pointer(&self.ptr, key))
    }

    /// Identity of this node.
    pub fn id(&self) -> NodeId {
        (self.file.path.clone(), self.ptr.clone())
    }

    /// The child `key` of an object.
    pub fn child(&self, key: &str) -> Option<Node> {
        self.value()
            .get(key)
            .map(|_| self.below(child_pointer(&self.ptr, key)))
    }

    /// The entries of an object, in order (empty for other values).
    pub fn entries(&self) -> Vec<(String, Node)> {
        match self.value() {
            Value::Object(m) => m
                .keys()
                .map(|k| (k.clone(), self.below(child_pointer(&self.ptr, k))))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The items of an array, in order (empty for other values).
    pub fn items(&self) -> Vec<Node> {
        match self.value() {
            Value::Array(a) => (0..a.len())
                .map(|i| self.below(format!("{}/{i}", self.ptr)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The `$ref` string of a reference object.
    pub fn ref_str(&self) -> Option<&str> {
        self.value().get("$ref").and_then(Value::as_str)
    }

    /// The same place with another value (e.g. after merging traits).
    pub fn with_value(&self, value: Value) -> Node {
        Node {
            file: self.file.clone(),
            ptr: self.ptr.clone(),
            replaced: Some((Rc::new(value), self.ptr.len())),
        }
    }
}

/// Where a `$ref` leads.
pub(crate) enum Target {
    /// To this node.
    Found(Node),
    /// To a network document accepted but not fetched (no resolver): keep the ref verbatim.
    Kept,
}

/// State of one load: options, files read, diagnostics.
pub(crate) struct Ctx<'o> {
    /// The caller's options.
    pub options: &'o LoadOptions,
    /// The main file's path as given.
    pub main_path: PathBuf,
    root: PathBuf,
    files: HashMap<PathBuf, Rc<SourceFile>>,
    failed: HashSet<PathBuf>,
    /// Every file read, in order.
    pub files_read: Vec<PathBuf>,
    /// Diagnostics so far.
    pub diags: Vec<Diagnostic>,
    /// How many pointer walks through `$ref`s are nested (a ref whose pointer passes through
    /// a ref whose pointer passes through …): bounded by [`MAX_REF_CHAIN`].
    follow_depth: usize,
    /// The main document's `asyncapi` version (empty when it has none).
    pub version: String,
    /// Where a schema refers to a multi-format schema object (see `official`).
    pub multi_format_refs: Vec<Location>,
}

/// Lexically normalises a path (`a/./b/../c` → `a/c`).
pub(crate) fn normalize_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn absolute(p: &Path) -> PathBuf {
    normalize_path(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// `target` relative to the folder `base` (both lexically normalised and absolute).
fn relative_to(base: &Path, target: &Path) -> PathBuf {
    let base: Vec<Component<'_>> = base.components().collect();
    let target: Vec<Component<'_>> = target.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for c in &target[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// Rewrites the `$ref`s inside `value`, written in file `from`, so that they mean the same
/// when read from file `to` (used when a trait from another file is merged into an object).
pub(crate) fn rebase_refs(value: &mut Value, from: &Path, to: &Path) {
    rebase_walk(value, from, to, 0);
}

fn rebase_walk(value: &mut Value, from: &Path, to: &Path, depth: usize) {
    if depth > 512 {
        return;
    }
    match value {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if let Some(new) = rebase_one(r, from, to) {
                    *r = new;
                }
            }
            for (k, v) in m.iter_mut() {
                if k != "$ref" {
                    rebase_walk(v, from, to, depth + 1);
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                rebase_walk(v, from, to, depth + 1);
            }
        }
        _ => {}
    }
}

fn rebase_one(r: &str, from: &Path, to: &Path) -> Option<String> {
    let (file_part, frag) = match r.find('#') {
        Some(i) => (&r[..i], &r[i..]),
        None => (r, ""),
    };
    if is_network(file_part) || (!file_part.is_empty() && scheme_of(file_part).is_some()) {
        return None;
    }
    let from_str = from.to_string_lossy();
    if is_network(&from_str) {
        let base = if file_part.is_empty() {
            from_str.into_owned()
        } else {
            join_url(&from_str, file_part)
        };
        return Some(format!("{base}{frag}"));
    }
    let target = if file_part.is_empty() {
        absolute(from)
    } else {
        absolute(
            &from
                .parent()
                .unwrap_or(Path::new(""))
                .join(percent_decode(file_part)),
        )
    };
    if target == absolute(to) {
        return Some(if frag.is_empty() {
            "#".to_string()
        } else {
            frag.to_string()
        });
    }
    let base = absolute(to.parent().unwrap_or(Path::new("")));
    let rel = relative_to(&base, &target);
    Some(format!("{}{frag}", rel.to_string_lossy()))
}

/// The node's pointer with the line/column of its `$ref` key.
fn ref_loc(holder: &Node) -> Location {
    let mut l = holder.loc_of("$ref");
    l.pointer = holder.loc().pointer;
    l
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_network(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

fn scheme_of(s: &str) -> Option<&str> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    (scheme.len() > 1
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
    .then_some(scheme)
}

fn join_url(base: &str, rel: &str) -> String {
    if is_network(rel) {
        return rel.to_string();
    }
    let cut = base.rfind('/').map_or(base.len(), |i| i + 1);
    let mut out = base[..cut].to_string();
    let mut rel = rel;
    loop {
        if let Some(r) = rel.strip_prefix("./") {
            rel = r;
        } else if let Some(r) = rel.strip_prefix("../") {
            rel = r;
            let trimmed = out.trim_end_matches('/');
            if let Some(i) = trimmed.rfind('/') {
                if !trimmed[..i].ends_with('/') {
                    out.truncate(i + 1);
                }
            }
        } else {
            break;
        }
    }
    out.push_str(rel);
    out
}

/// The root folder for a main file at `path` when none is given: the nearest ancestor of its
/// folder that holds a `.git` or a `Cargo.toml` (the project), else the file's folder.
pub(crate) fn default_root(path: &Path) -> PathBuf {
    let folder = absolute(path.parent().unwrap_or(Path::new("")));
    folder
        .ancestors()
        .find(|dir| dir.join(".git").exists() || dir.join("Cargo.toml").is_file())
        .map_or_else(|| folder.clone(), Path::to_path_buf)
}

impl<'o> Ctx<'o> {
    /// A context for the main file at `path`.
    pub fn new(path: &Path, options: &'o LoadOptions) -> Self {
        let root = match &options.root {
            Some(r) => absolute(r),
            None => default_root(path),
        };
        Ctx {
            options,
            main_path: path.to_path_buf(),
            root,
            files: HashMap::new(),
            failed: HashSet::new(),
            files_read: Vec::new(),
            diags: Vec::new(),
            follow_depth: 0,
            version: String::new(),
            multi_format_refs: Vec::new(),
        }
    }

    /// Parses the main document's text; `None` (with a diagnostic) when it does not parse.
    pub fn add_main(&mut self, text: &str) -> Option<Node> {
        match parse(text, &self.main_path) {
            Ok(file) => {
                let file = Rc::new(file);
                self.files.insert(self.main_path.clone(), file.clone());
                Some(Node::in_file(file, String::new()))
            }
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    /// Pushes an error.
    pub fn error(&mut self, loc: &Location, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(loc, message));
    }

    /// Pushes an error with a hint.
    pub fn error_hint(&mut self, loc: &Location, message: impl Into<String>, hint: &str) {
        self.diags
            .push(Diagnostic::error(loc, message).with_hint(hint));
    }

    /// Pushes a warning.
    pub fn warn(&mut self, loc: &Location, message: impl Into<String>) {
        self.diags.push(Diagnostic::warning(loc, message));
    }

    /// `true` when the node is the main file.
    pub fn is_main(&self, file: &Path) -> bool {
        file == self.main_path
    }

    fn load_file(&mut self, path: PathBuf, network: bool, at: &Location) -> Option<Rc<SourceFile>> {
        if let Some(f) = self.files.get(&path) {
            return Some(f.clone());
        }
        if self.failed.contains(&path) {
            return None;
        }
        if self.files.len() >= MAX_FILES {
            self.error(at, format!("more than {MAX_FILES} files referenced"));
            self.failed.insert(path);
            return None;
        }
        let text = if network {
            let url = path.to_string_lossy().into_owned();
            let resolver = self.options.network_resolver.clone()?;
            match resolver(&url) {
                Ok(t) => t,
                Err(e) => {
                    self.error(at, format!("cannot fetch `{url}`: {e}"));
                    self.failed.insert(path);
                    return None;
                }
            }
        } else {
            match std::fs::read_to_string(&path) {
                Ok(t) => {
                    self.files_read.push(path.clone());
                    t
                }
                Err(e) => {
                    self.diags.push(
                        Diagnostic::error(
                            at,
                            format!("cannot read referenced file `{}`: {e}", path.display()),
                        )
                        .with_hint("check the file part of the `$ref`; it is relative to the referring file"),
                    );
                    self.failed.insert(path);
                    return None;
                }
            }
        };
        match parse(&text, &path) {
            Ok(f) => {
                let f = Rc::new(f);
                self.files.insert(path, f.clone());
                Some(f)
            }
            Err(d) => {
                self.diags.push(d);
                self.failed.insert(path);
                None
            }
        }
    }

    /// Where the reference `r`, written in `holder` (the object holding `$ref`), leads.
    /// Errors are reported and give `None`.
    pub fn resolve_ref(&mut self, holder: &Node, r: &str) -> Option<Target> {
        let at = ref_loc(holder);
        let (file_part, frag) = match r.find('#') {
            Some(i) => (&r[..i], &r[i + 1..]),
            None => (r, ""),
        };
        let frag = percent_decode(frag);
        let from = holder.file.path.clone();
        let from_str = from.to_string_lossy().into_owned();
        let file = if file_part.is_empty() {
            holder.file.clone()
        } else if is_network(file_part) || (is_network(&from_str) && scheme_of(file_part).is_none())
        {
            let url = if is_network(file_part) {
                file_part.to_string()
            } else {
                join_url(&from_str, file_part)
            };
            if !self.options.allow_network {
                self.diags.push(
                    Diagnostic::error(&at, format!("network reference `{r}` refused"))
                        .with_hint("vendor the referenced document next to the spec and use a relative path, or set `LoadOptions::allow_network`"),
                );
                return None;
            }
            if self.options.network_resolver.is_none() {
                self.warn(
                    &at,
                    format!("network reference `{r}` kept unresolved (no network resolver given)"),
                );
                return Some(Target::Kept);
            }
            self.load_file(PathBuf::from(url), true, &at)?
        } else if let Some(scheme) = scheme_of(file_part) {
            self.error(
                &at,
                format!("unsupported reference scheme `{scheme}:` in `{r}`"),
            );
            return None;
        } else {
            let rel = percent_decode(file_part);
            let base = from.parent().unwrap_or(Path::new(""));
            let path = normalize_path(&base.join(&rel));
            if !self.options.allow_outside_root && !absolute(&path).starts_with(&self.root) {
                self.diags.push(
                    Diagnostic::error(
                        &at,
                        format!(
                            "reference `{r}` escapes the spec's root folder `{}`",
                            self.root.display()
                        ),
                    )
                    .with_hint("set `LoadOptions::root` to the folder that holds every spec file (by default the nearest folder with a `.git` or `Cargo.toml`), or set `LoadOptions::allow_outside_root`"),
                );
                return None;
            }
            self.load_file(path, false, &at)?
        };
        if !frag.is_empty() && !frag.starts_with('/') {
            self.error_hint(
                &at,
                format!("reference `{r}` has a fragment that is not a JSON pointer"),
                "fragments look like `#/components/schemas/Name`",
            );
            return None;
        }
        if lookup(&file.value, &frag).is_some() {
            return Some(Target::Found(Node::in_file(file, frag)));
        }
        // The official parser follows the references met along a pointer
        // (`#/channels/echo/messages/m` where `channels/echo` is a `$ref` to another file).
        let segments: Vec<String> = frag
            .split('/')
            .skip(1)
            .map(unescape_pointer_segment)
            .collect();
        let before = self.diags.len();
        let through = self.follow_segments(Node::in_file(file.clone(), String::new()), &segments);
        self.diags.truncate(before);
        match through {
            Ok(node) => Some(Target::Found(node)),
            Err(_) => {
                let shown = frag
                    .split('/')
                    .skip(1)
                    .map(unescape_pointer_segment)
                    .collect::<Vec<_>>()
                    .join("/");
                self.error_hint(
                    &at,
                    format!(
                        "reference `{r}` does not resolve: nothing at `#{frag}` in `{}`",
                        file.path.display()
                    ),
                    if shown.is_empty() {
                        "check the reference"
                    } else {
                        "check the spelling of each segment of the pointer"
                    },
                );
                None
            }
        }
    }

    /// Walks `segments` (unescaped) down from `node`, following every `$ref` met on the way
    /// (into other files too). `Err` with the deepest node reached when the walk fails.
    /// Iterative along the path; nested walks (a ref on the path whose own pointer needs a
    /// walk) are bounded by [`MAX_REF_CHAIN`].
    pub fn follow_segments(&mut self, node: Node, segments: &[String]) -> Result<Node, Node> {
        if self.follow_depth > MAX_REF_CHAIN {
            return Err(node);
        }
        self.follow_depth += 1;
        let result = self.follow_segments_inner(node, segments);
        self.follow_depth -= 1;
        result
    }

    fn follow_segments_inner(&mut self, node: Node, segments: &[String]) -> Result<Node, Node> {
        let mut cur = node;
        for seg in segments {
            let mut hops = 0;
            while let Some(r) = cur.ref_str().map(str::to_string) {
                hops += 1;
                if hops > MAX_REF_CHAIN {
                    return Err(cur);
                }
                match self.resolve_ref(&cur, &r) {
                    Some(Target::Found(n)) => cur = n,
                    _ => return Err(cur),
                }
            }
            let next = match cur.value() {
                Value::Object(m) if m.contains_key(seg.as_str()) => child_pointer(&cur.ptr, seg),
                Value::Array(a)
                    if !seg.starts_with('+')
                        && (seg == "0" || !seg.starts_with('0'))
                        && seg.parse::<usize>().is_ok_and(|i| i < a.len()) =>
                {
                    format!("{}/{seg}", cur.ptr)
                }
                _ => return Err(cur),
            };
            cur = cur.below(next);
        }
        Ok(cur)
    }

    /// Follows a chain of references from `node` to a non-reference value. `None` (with a
    /// diagnostic) for dangling refs and cycles; kept network refs give `None` too.
    pub fn deref(&mut self, node: &Node) -> Option<Node> {
        let mut cur = node.clone();
        let mut seen: Vec<NodeId> = Vec::new();
        while let Some(r) = cur.ref_str().map(str::to_string) {
            if seen.contains(&cur.id()) || seen.len() > MAX_REF_CHAIN {
                let chain = seen
                    .iter()
                    .map(|(f, p)| format!("{}#{p}", f.display()))
                    .collect::<Vec<_>>()
                    .join(" -> ");
                self.error_hint(
                    &ref_loc(node),
                    format!("reference cycle: `{r}` never reaches a value ({chain})"),
                    "break the cycle; only schemas may refer to themselves",
                );
                return None;
            }
            seen.push(cur.id());
            match self.resolve_ref(&cur, &r)? {
                Target::Found(n) => cur = n,
                Target::Kept => return None,
            }
        }
        Some(cur)
    }
}

#[cfg(test)]
mod lookup_tests {
    use super::*;

    #[test]
    fn lookup_agrees_with_serde_json_pointer() {
        let v = serde_json::json!({
            "a": {"b/c": [10, {"d~e": true}], "": {"x": 1}},
            "01": "key", "k": [0, 1, 2]
        });
        for p in [
            "",
            "/",
            "/a",
            "/a/b~1c",
            "/a/b~1c/0",
            "/a/b~1c/1/d~0e",
            "/a/",
            "/a//x",
            "/01",
            "/k/01",
            "/k/+1",
            "/k/2",
            "/k/3",
            "/a/b/c",
            "a",
            "/a/b~1c/1/d~0e/z",
            "/k/-1",
        ] {
            assert_eq!(lookup(&v, p), v.pointer(p), "{p}");
        }
    }
}
