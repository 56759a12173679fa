//! Parsing one file (YAML or JSON) into a JSON value plus a map from JSON pointers to
//! line/column positions.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};

use crate::diagnostic::{Diagnostic, Location, child_pointer, escape_pointer_segment};

/// Deepest nesting accepted by the position scanners.
const MAX_DEPTH: usize = 512;

/// Most bytes accepted for one file.
const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;

/// FxHash (as in rustc): much cheaper than SipHash for the many pointer keys of
/// [`Positions`]; the keys come from the documents being loaded, not from an adversary.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Pointer (`/a/b`, no `#`) → (line, column), both 1-based.
pub(crate) type Positions = HashMap<String, (u32, u32), BuildHasherDefault<FxHasher>>;

/// A parsed file.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// Its path (or URL for network documents).
    pub path: PathBuf,
    /// Its content.
    pub value: Value,
    /// Pointer (`/a/b`, no `#`) → (line, column), both 1-based.
    pub positions: Positions,
}

impl SourceFile {
    /// The location of `pointer` (`/a/b`): exact, or the nearest ancestor's line/column.
    pub fn location(&self, pointer: &str) -> Location {
        let mut probe = pointer;
        let pos = loop {
            if let Some(p) = self.positions.get(probe) {
                break Some(*p);
            }
            match probe.rfind('/') {
                Some(i) => probe = &probe[..i],
                None => break None,
            }
        };
        Location {
            file: self.path.clone(),
            pointer: format!("#{pointer}"),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
        }
    }
}

/// `true` when the path (by extension) names a JSON file.
fn is_json(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => ext.eq_ignore_ascii_case("json"),
        None => text.trim_start().starts_with('{'),
    }
}

/// Parses `text` as JSON or YAML depending on `path`.
pub(crate) fn parse(text: &str, path: &Path) -> Result<SourceFile, Diagnostic> {
    let loc = |line: Option<u32>, column: Option<u32>| Location {
        file: path.to_path_buf(),
        pointer: String::new(),
        line,
        column,
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            &loc(None, None),
            format!("file is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    // JSON is YAML too: a `.yaml` file written as JSON still gets JSON positions.
    let json_like = is_json(path, text)
        || (text.trim_start().starts_with('{') && serde_json::from_str::<Value>(text).is_ok());
    let (value, positions) = if json_like {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Diagnostic::error(
                &loc(u32::try_from(e.line()).ok(), u32::try_from(e.column()).ok()),
                format!("invalid JSON: {e}"),
            )
        })?;
        (value, json_positions(text))
    } else {
        let mut yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
            let (line, column) = match e.location() {
                Some(l) => (u32::try_from(l.line()).ok(), u32::try_from(l.column()).ok()),
                None => (None, None),
            };
            let mut d = Diagnostic::error(&loc(line, column), format!("invalid YAML: {e}"));
            if let Some((pointer, (line, column))) = duplicate_key_position(text, &e.to_string()) {
                d.pointer = format!("#{pointer}");
                d.line = Some(line);
                d.column = Some(column);
                d.hint = Some("keys must be unique within a mapping".to_string());
            }
            d
        })?;
        yaml.apply_merge().map_err(|e| {
            Diagnostic::error(
                &loc(None, None),
                format!("invalid YAML merge key (`<<`): {e}"),
            )
        })?;
        let value = yaml_to_json(yaml, 0).map_err(|m| Diagnostic::error(&loc(None, None), m))?;
        (value, yaml_positions(text))
    };
    Ok(SourceFile {
        path: path.to_path_buf(),
        value,
        positions,
    })
}

/// For a duplicate-key error (`a.b: duplicate entry with key "k" at …`), the pointer and
/// position of the second occurrence, found with the position scanner.
fn duplicate_key_position(text: &str, message: &str) -> Option<(String, (u32, u32))> {
    let (path, rest) = message.split_once("duplicate entry with key \"")?;
    let key = rest.split('"').next()?;
    let path = path.trim_end().trim_end_matches(':');
    let mut pointer = String::new();
    if !path.is_empty() && path != "." {
        for seg in path.split('.') {
            let (name, indexes) = match seg.find('[') {
                Some(i) => (&seg[..i], &seg[i..]),
                None => (seg, ""),
            };
            pointer.push('/');
            pointer.push_str(&escape_pointer_segment(name));
            for idx in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
                pointer.push('/');
                pointer.push_str(idx);
            }
        }
    }
    pointer.push('/');
    pointer.push_str(&escape_pointer_segment(key));
    let pos = *yaml_positions(text).get(&pointer)?;
    Some((pointer, pos))
}

fn yaml_key(key: serde_norway::Value) -> Result<String, String> {
    use serde_norway::Value as Y;
    match key {
        Y::String(s) => Ok(s),
        Y::Bool(b) => Ok(b.to_string()),
        Y::Number(n) => Ok(n.to_string()),
        Y::Null => Ok("null".to_string()),
        Y::Tagged(t) => yaml_key(t.value),
        Y::Sequence(_) | Y::Mapping(_) => {
            Err("YAML mapping keys must be scalars, found a collection".to_string())
        }
    }
}

fn yaml_to_json(v: serde_norway::Value, depth: usize) -> Result<Value, String> {
    use serde_norway::Value as Y;
    if depth > MAX_DEPTH {
        return Err("document is nested too deeply".to_string());
    }
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                match n.as_f64().and_then(Number::from_f64) {
                    Some(f) => Value::Number(f),
                    None => Value::String(n.to_string()),
                }
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(|i| yaml_to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(yaml_key(k)?, yaml_to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value, depth + 1)?,
    })
}

// ---------------------------------------------------------------------------------------------
// YAML positions: a line scanner for block-style YAML. Flow collections, block scalars and
// multi-line scalars are skipped; their contents get their parent's position.

struct Frame {
    indent: usize,
    pointer: String,
    seq: bool,
    next: usize,
}

fn split_key(content: &str) -> Option<(String, &str)> {
    let bytes = content.as_bytes();
    let first = *bytes.first()?;
    if first == b'"' || first == b'\'' {
        let mut i = 1;
        let mut key = String::new();
        loop {
            let c = *bytes.get(i)?;
            if first == b'"' && c == b'\\' {
                let next = content.get(i + 1..)?.chars().next()?;
                key.push(next);
                i += 1 + next.len_utf8();
                continue;
            }
            if c == first {
                if first == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    key.push('\'');
                    i += 2;
                    continue;
                }
                break;
            }
            let ch = content.get(i..)?.chars().next()?;
            key.push(ch);
            i += ch.len_utf8();
        }
        let rest = content.get(i + 1..)?.trim_start();
        let after = rest.strip_prefix(':')?;
        if after.is_empty() || after.starts_with(' ') || after.starts_with('\t') {
            return Some((key, after));
        }
        return None;
    }
    if b"{[&*!|>#%@`?,".contains(&first) {
        return None;
    }
    let mut search = 0;
    while let Some(pos) = content[search..].find(':') {
        let idx = search + pos;
        let after = &content[idx + 1..];
        if after.is_empty() || after.starts_with(' ') || after.starts_with('\t') {
            let key = content[..idx].trim_end();
            if key.contains(" #") {
                return None;
            }
            return Some((key.to_string(), after));
        }
        search = idx + 1;
    }
    None
}

fn bracket_balance(s: &str) -> i64 {
    let mut depth = 0i64;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                '#' => break,
                _ => {}
            },
        }
    }
    depth
}

pub(crate) fn yaml_positions(text: &str) -> Positions {
    let mut map = Positions::default();
    map.insert(String::new(), (1, 1));
    let mut stack: Vec<Frame> = Vec::new();
    let mut pending: Option<String> = None;
    let mut skip_deeper_than: Option<usize> = None;
    let mut flow_depth: i64 = 0;
    for (i, raw) in text.lines().enumerate() {
        let ln = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = raw.trim_end();
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        if content.is_empty() {
            continue;
        }
        if flow_depth > 0 {
            flow_depth += bracket_balance(content);
            continue;
        }
        if let Some(limit) = skip_deeper_than {
            if indent > limit {
                continue;
            }
            skip_deeper_than = None;
        }
        if content.starts_with('#')
            || (indent == 0
                && (content == "---"
                    || content.starts_with("--- ")
                    || content == "..."
                    || content.starts_with('%')))
        {
            continue;
        }
        let mut col = indent;
        let mut content = content;
        loop {
            if stack.len() > MAX_DEPTH {
                return map;
            }
            if content == "-" || content.starts_with("- ") {
                while stack.last().is_some_and(|f| f.indent > col) {
                    stack.pop();
                }
                let item = match stack.last_mut() {
                    Some(f) if f.seq && f.indent == col => {
                        f.next += 1;
                        format!("{}/{}", f.pointer, f.next - 1)
                    }
                    _ => {
                        let Some(p) = pending.take() else { break };
                        let item = format!("{p}/0");
                        stack.push(Frame {
                            indent: col,
                            pointer: p,
                            seq: true,
                            next: 1,
                        });
                        item
                    }
                };
                map.insert(
                    item.clone(),
                    (ln, u32::try_from(col + 1).unwrap_or(u32::MAX)),
                );
                let rest = &content[1..];
                let spaces = rest.len() - rest.trim_start_matches(' ').len();
                let rest = rest.trim_start();
                pending = Some(item);
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                col += 1 + spaces;
                content = rest;
                continue;
            }
            if let Some((key, value)) = split_key(content) {
                while stack
                    .last()
                    .is_some_and(|f| f.indent > col || (f.indent == col && f.seq))
                {
                    stack.pop();
                }
                let parent = match stack.last() {
                    Some(f) if f.indent == col => f.pointer.clone(),
                    top => {
                        let parent = match (pending.take(), top) {
                            (Some(p), _) => p,
                            (None, None) => String::new(),
                            (None, Some(_)) => break,
                        };
                        stack.push(Frame {
                            indent: col,
                            pointer: parent.clone(),
                            seq: false,
                            next: 0,
                        });
                        parent
                    }
                };
                pending = None;
                let ptr = format!("{parent}/{}", escape_pointer_segment(&key));
                map.insert(
                    ptr.clone(),
                    (ln, u32::try_from(col + 1).unwrap_or(u32::MAX)),
                );
                let mut v = value.trim_start();
                while v.starts_with('&') || v.starts_with('!') {
                    v = v.find(' ').map_or("", |i| v[i..].trim_start());
                }
                if v.is_empty() || v.starts_with('#') {
                    pending = Some(ptr);
                } else if v.starts_with('{') || v.starts_with('[') {
                    flow_depth = bracket_balance(v).max(0);
                } else {
                    // Block scalars, quoted and plain scalars: deeper lines continue them.
                    skip_deeper_than = Some(col);
                }
                break;
            }
            if content.starts_with('{') || content.starts_with('[') {
                flow_depth = bracket_balance(content).max(0);
            } else if content.starts_with('|') || content.starts_with('>') {
                skip_deeper_than = Some(col.saturating_sub(1));
            }
            pending = None;
            break;
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// JSON positions: a small scanner that follows the structure serde_json already accepted.

struct JsonScan<'a> {
    b: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
    map: Positions,
}

impl JsonScan<'_> {
    fn bump(&mut self) {
        if let Some(&c) = self.b.get(self.i) {
            if c == b'\n' {
                self.line += 1;
                self.col = 1;
            } else if c & 0xC0 != 0x80 {
                self.col += 1;
            }
            self.i += 1;
        }
    }

    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.bump();
        }
    }

    /// Skips a string; `Some(escaped)` (whether it holds a `\\`) when it is closed.
    fn skip_string(&mut self) -> Option<bool> {
        let mut escaped = false;
        self.bump();
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'\\' => {
                    escaped = true;
                    self.bump();
                    self.bump();
                }
                b'"' => {
                    self.bump();
                    return Some(escaped);
                }
                _ => self.bump(),
            }
        }
        None
    }

    /// Reads a string (a key): decoded only when it holds escapes.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        let escaped = self.skip_string()?;
        let raw = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        if escaped {
            serde_json::from_str(raw).ok()
        } else {
            Some(raw[1..raw.len() - 1].to_string())
        }
    }

    fn value(&mut self, ptr: &str, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => {
                self.bump();
                loop {
                    self.ws();
                    match *self.b.get(self.i)? {
                        b'}' => {
                            self.bump();
                            return Some(());
                        }
                        b',' => self.bump(),
                        b'"' => {
                            let pos = (self.line, self.col);
                            let key = self.string()?;
                            let child = child_pointer(ptr, &key);
                            self.map.insert(child.clone(), pos);
                            self.ws();
                            if self.b.get(self.i) != Some(&b':') {
                                return None;
                            }
                            self.bump();
                            self.value(&child, depth + 1)?;
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.bump();
                let mut idx = 0usize;
                loop {
                    self.ws();
                    match *self.b.get(self.i)? {
                        b']' => {
                            self.bump();
                            return Some(());
                        }
                        b',' => self.bump(),
                        _ => {
                            let child = format!("{ptr}/{idx}");
                            self.map.insert(child.clone(), (self.line, self.col));
                            self.value(&child, depth + 1)?;
                            idx += 1;
                        }
                    }
                }
            }
            b'"' => self.skip_string().map(|_| ()),
            _ => {
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| !b",]} \t\r\n".contains(c))
                {
                    self.bump();
                }
                Some(())
            }
        }
    }
}

pub(crate) fn json_positions(text: &str) -> Positions {
    let mut scan = JsonScan {
        b: text.as_bytes(),
        i: 0,
        line: 1,
        col: 1,
        map: Positions::default(),
    };
    scan.map.insert(String::new(), (1, 1));
    let _ = scan.value("", 0);
    scan.map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_positions_follow_block_structure() {
        let text = "a: 1\nb:\n  c: x\n  d:\n  - e: 1\n    f: |\n      g: no\n  - h\nk: [1,\n  2]\n'q/r': 2\n";
        let m = yaml_positions(text);
        assert_eq!(m.get("/a"), Some(&(1, 1)));
        assert_eq!(m.get("/b/c"), Some(&(3, 3)));
        assert_eq!(m.get("/b/d/0"), Some(&(5, 3)));
        assert_eq!(m.get("/b/d/0/e"), Some(&(5, 5)));
        assert_eq!(m.get("/b/d/0/f"), Some(&(6, 5)));
        assert_eq!(m.get("/b/d/0/f/g"), None);
        assert_eq!(m.get("/b/d/1"), Some(&(8, 3)));
        assert_eq!(m.get("/k"), Some(&(9, 1)));
        assert_eq!(m.get("/q~1r"), Some(&(11, 1)));
    }

    /// On every corpus document, each position found names a node that exists, and object
    /// keys sit exactly at their line and column.
    #[test]
    fn yaml_positions_are_exact_on_the_corpus() {
        let root = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/asyncapi-corpus"
        ));
        let mut stack = vec![root.to_path_buf()];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("corpus") {
                let p = entry.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if !p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                    continue;
                }
                files += 1;
                let text = std::fs::read_to_string(&p).expect("read");
                let file = parse(&text, &p).expect("parses");
                let lines: Vec<&str> = text.lines().collect();
                assert!(file.positions.len() > 1, "{}", p.display());
                for (ptr, (line, col)) in &file.positions {
                    assert!(
                        file.value.pointer(ptr).is_some(),
                        "{}: {ptr} at {line}:{col} does not exist",
                        p.display()
                    );
                    let Some(last) = ptr.rsplit('/').next() else {
                        continue;
                    };
                    if ptr.is_empty() || last.parse::<usize>().is_ok() {
                        continue;
                    }
                    let key = crate::diagnostic::unescape_pointer_segment(last);
                    let text_line = lines[*line as usize - 1];
                    let at: String = text_line.chars().skip(*col as usize - 1).collect();
                    let at = at.trim_start_matches(['\'', '"']);
                    assert!(
                        at.starts_with(&key),
                        "{}: {ptr} at {line}:{col} points at {text_line:?}",
                        p.display()
                    );
                }
            }
        }
        assert!(files >= 45, "{files}");
    }

    #[test]
    fn json_positions_track_keys_and_items() {
        let text = "{\n  \"a\": {\"b/c\": [1,\n 2]}\n}";
        let m = json_positions(text);
        assert_eq!(m.get("/a"), Some(&(2, 3)));
        assert_eq!(m.get("/a/b~1c"), Some(&(2, 9)));
        assert_eq!(m.get("/a/b~1c/1"), Some(&(3, 2)));
    }
}
