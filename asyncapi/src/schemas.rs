//! The schema table: every `$ref` inside a schema is rewritten to
//! `#/components/schemas/<Name>` and its target collected once under that name.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use crate::diagnostic::{child_pointer, escape_pointer_segment, unescape_pointer_segment};
use crate::resolve::{Ctx, Node, NodeId, Target};

/// Keywords whose values are data, not schemas: never rewritten.
const DATA_KEYWORDS: &[&str] = &["enum", "const", "default", "examples", "example"];

/// Collects the schemas of one document.
#[derive(Default)]
pub(crate) struct Schemas {
    names: HashMap<NodeId, String>,
    used: HashSet<String>,
    /// The finished table.
    pub out: BTreeMap<String, Value>,
    queue: VecDeque<(String, Node)>,
}

/// Makes a schema name valid for `components/schemas` keys (`[A-Za-z0-9_.-]+`).
pub(crate) fn sanitize_name(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "Schema".to_string()
    } else {
        s
    }
}

impl Schemas {
    /// Registers every entry of the main file's `components/schemas`.
    pub fn add_components(&mut self, ctx: &mut Ctx<'_>, node: &Node) {
        if !node.value().is_object() {
            ctx.error(&node.loc(), "`components.schemas` must be an object");
            return;
        }
        for (key, child) in node.entries() {
            self.names.insert(child.id(), key.clone());
            self.used.insert(key.clone());
            self.queue.push_back((key, child));
        }
    }

    fn name_for(&mut self, target: &Node) -> String {
        if let Some(n) = self.names.get(&target.id()) {
            return n.clone();
        }
        let base = match target.ptr.rsplit('/').next() {
            Some(seg) if !target.ptr.is_empty() => unescape_pointer_segment(seg),
            _ => target
                .file
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let base = sanitize_name(&base);
        let mut name = base.clone();
        let mut n = 2;
        while self.used.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        self.names.insert(target.id(), name.clone());
        self.queue.push_back((name.clone(), target.clone()));
        name
    }

    /// The schema at `node` with every `$ref` inside rewritten into the table.
    pub fn rewrite(&mut self, ctx: &mut Ctx<'_>, node: &Node) -> Value {
        self.walk(ctx, node, node.value(), &node.ptr, 0)
    }

    fn walk(&mut self, ctx: &mut Ctx<'_>, at: &Node, v: &Value, ptr: &str, depth: usize) -> Value {
        if depth > 256 {
            return v.clone();
        }
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let holder = at.below(ptr.to_string());
                    let mut out = Map::new();
                    match ctx.resolve_ref(&holder, r) {
                        Some(Target::Found(target)) => {
                            let name = self.name_for(&target);
                            out.insert(
                                "$ref".to_string(),
                                Value::String(format!(
                                    "#/components/schemas/{}",
                                    escape_pointer_segment(&name)
                                )),
                            );
                        }
                        _ => {
                            out.insert("$ref".to_string(), Value::String(r.to_string()));
                        }
                    }
                    for (k, val) in m {
                        if k != "$ref" {
                            out.insert(k.clone(), val.clone());
                        }
                    }
                    return Value::Object(out);
                }
                let mut out = Map::new();
                for (k, val) in m {
                    let child = if DATA_KEYWORDS.contains(&k.as_str()) || k.starts_with("x-") {
                        val.clone()
                    } else {
                        let p = child_pointer(ptr, k);
                        self.walk(ctx, at, val, &p, depth + 1)
                    };
                    out.insert(k.clone(), child);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, val)| self.walk(ctx, at, val, &format!("{ptr}/{i}"), depth + 1))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Rewrites every queued schema into [`Schemas::out`].
    pub fn finish(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((name, node)) = self.queue.pop_front() {
            let node = match (node.child("schemaFormat"), node.child("schema")) {
                (Some(_), Some(inner)) => inner,
                _ => node,
            };
            let value = self.rewrite(ctx, &node);
            self.out.insert(name, value);
        }
    }
}
