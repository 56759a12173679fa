//! A documentation page for a [`Document`]: one self-contained HTML file (inline CSS and a
//! few lines of inline script for the filter box; no network, no CDN).
//!
//! It lists the servers (host, protocol, variables; never credentials), then the operations
//! grouped by action, each with an anchor (`#op-<id>`), its channel's address template and
//! parameters, its messages (content type, correlation id, payload and headers schemas as
//! trees: types, required, constraints, enums, descriptions, examples), bindings and reply.
//! Everything that comes from the document is escaped; descriptions get a tiny Markdown subset
//! (paragraphs, `-`/`*` lists, headings, `**bold**`, `*emphasis*`, `` `code` ``, and
//! `[links](…)` to `http(s):` or `mailto:` only), so nothing in a document runs as script.
//! The filter box also reads `?q=…` from the page's URL.
//!
//! ```
//! # use std::path::Path;
//! let text = "asyncapi: 3.0.0\ninfo: { title: Demo, version: 1.0.0 }\n";
//! let loaded = asyncapi::load_str(text, Path::new("demo.yaml"), &Default::default()).unwrap();
//! let page = asyncapi::html::render(&loaded.document);
//! assert!(page.starts_with("<!doctype html>") && page.contains("Demo"));
//! ```

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

use crate::{Action, Channel, Document, Message, Operation};

/// Deepest schema nesting shown; deeper levels (and `$ref` cycles) show as a reference.
const MAX_DEPTH: usize = 12;

const STYLE: &str = "\
:root{--fg:#1d2430;--mute:#5b6472;--line:#dde2ea;--bg:#f6f8fb;--recv:#0a7a4f;--send:#1f5fbf}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:#fff}
header{padding:24px 32px;background:var(--bg);border-bottom:1px solid var(--line)}
h1{margin:0 0 4px;font-size:26px}h2{margin:32px 0 12px;font-size:20px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{margin:0;font-size:17px}main{display:grid;grid-template-columns:260px 1fr;gap:32px;padding:0 32px 48px}
nav{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;padding-top:24px;font-size:14px}
nav ul{list-style:none;padding:0;margin:0 0 12px}nav li{margin:2px 0}nav a{color:var(--fg);text-decoration:none}nav a:hover{text-decoration:underline}
#filter{width:100%;padding:6px 8px;border:1px solid var(--line);border-radius:6px;font:inherit;margin-bottom:6px}
.count{color:var(--mute);font-size:13px;margin-bottom:12px}.ver{color:var(--mute);font-weight:normal;font-size:16px}
.links a{margin-right:12px}code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow:auto;max-height:320px}
.op{border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:0 0 16px}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600;text-transform:uppercase;color:#fff;margin-right:8px;vertical-align:2px}
.receive{background:var(--recv)}.send{background:var(--send)}
.addr{font-family:ui-monospace,Menlo,Consolas,monospace;background:var(--bg);padding:1px 6px;border-radius:4px}.addr .param{color:#a0460a;font-weight:600}
.mute{color:var(--mute)}.msg{margin:10px 0 0 0;border-left:3px solid var(--line);padding-left:12px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
.tree,.tree ul{list-style:none;margin:0;padding-left:16px}.tree{padding-left:0}.tree li{margin:2px 0}
.ty{color:#6d3fb5;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}.req{color:#b3261e;font-size:12px;font-weight:600}
.con{color:var(--mute);font-size:13px}summary{cursor:pointer}.desc p{margin:4px 0}
[hidden]{display:none!important}
";

const SCRIPT: &str = "\
(function(){var f=document.getElementById('filter'),ops=document.querySelectorAll('.op'),
links=document.querySelectorAll('nav li[data-op]'),count=document.getElementById('count');
function apply(){var q=f.value.trim().toLowerCase(),n=0;
ops.forEach(function(o){var hit=!q||o.getAttribute('data-search').indexOf(q)>=0;o.hidden=!hit;if(hit)n++;});
links.forEach(function(l){var o=document.getElementById(l.getAttribute('data-op'));l.hidden=!!(o&&o.hidden);});
document.querySelectorAll('.group').forEach(function(g){g.hidden=!g.querySelector('.op:not([hidden])');});
count.textContent=n+' of '+ops.length+' operations shown';}
var q=new URLSearchParams(location.search).get('q');if(q)f.value=q;
f.addEventListener('input',apply);apply();})();
";

/// The whole page for `doc`.
pub fn render(doc: &Document) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = esc(&doc.info.title);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'none'; \
         form-action 'none'; base-uri 'none'\">\
         <title>{title} {version}</title><style>{STYLE}</style></head><body>\n\
         <header><h1>{title} <span class=\"ver\">{version}</span></h1>",
        version = esc(&doc.info.version),
    );
    if let Some(d) = &doc.info.description {
        let _ = write!(out, "<div class=\"desc\">{}</div>", markdown(d));
    }
    out.push_str(
        "<div class=\"links\"><a href=\"asyncapi.json\">asyncapi.json</a>\
         <a href=\"asyncapi.yaml\">asyncapi.yaml</a></div></header>\n<main><nav>\
         <input id=\"filter\" type=\"search\" placeholder=\"Filter operations…\" \
         aria-label=\"Filter operations\"><div id=\"count\" class=\"count\"></div>",
    );
    for (action, label) in ACTIONS {
        let ops: Vec<&Operation> = doc
            .operations
            .iter()
            .filter(|o| o.action == action)
            .collect();
        if ops.is_empty() {
            continue;
        }
        let _ = write!(out, "<div class=\"mute\">{label}</div><ul>");
        for op in ops {
            let _ = write!(
                out,
                "<li data-op=\"{a}\"><a href=\"#{a}\">{}</a></li>",
                esc(&op.id),
                a = anchor(&op.id)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</nav><div>\n");
    servers(&mut out, doc);
    for (action, label) in ACTIONS {
        let ops: Vec<&Operation> = doc
            .operations
            .iter()
            .filter(|o| o.action == action)
            .collect();
        if ops.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<section class=\"group\"><h2>{label}</h2>");
        for op in ops {
            operation(&mut out, doc, op);
        }
        out.push_str("</section>\n");
    }
    if doc.operations.is_empty() {
        out.push_str("<h2>Operations</h2><p class=\"mute\">The document has no operations.</p>");
    }
    let _ = writeln!(out, "</div></main><script>{SCRIPT}</script></body></html>");
    out
}

const ACTIONS: [(Action, &str); 2] = [
    (Action::Receive, "Receive (the application consumes)"),
    (Action::Send, "Send (the application publishes)"),
];

fn servers(out: &mut String, doc: &Document) {
    if doc.servers.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Servers</h2><table><tr><th>name</th><th>protocol</th><th>host</th>\
         <th>variables</th><th>description</th></tr>",
    );
    for s in &doc.servers {
        // A host never shows user info (`user:password@`).
        let host = s.host.rsplit_once('@').map_or(s.host.as_str(), |(_, h)| h);
        let mut protocol = esc(&s.protocol);
        if let Some(v) = &s.protocol_version {
            let _ = write!(protocol, " {}", esc(v));
        }
        let mut vars = String::new();
        for v in &s.variables {
            let _ = write!(vars, "<div><code>{}</code>", esc(&v.name));
            if let Some(d) = &v.default {
                let _ = write!(vars, " = <code>{}</code>", esc(d));
            }
            if !v.enum_values.is_empty() {
                let _ = write!(
                    vars,
                    " <span class=\"con\">one of {}</span>",
                    list(&v.enum_values)
                );
            }
            if let Some(d) = &v.description {
                let _ = write!(vars, " <span class=\"mute\">{}</span>", esc(d));
            }
            vars.push_str("</div>");
        }
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{protocol}</td><td><span class=\"addr\">{}</span>{}</td>\
             <td>{vars}</td><td class=\"desc\">{}</td></tr>",
            esc(&s.name),
            address(host),
            s.pathname.as_deref().map(esc).unwrap_or_default(),
            s.description.as_deref().map(markdown).unwrap_or_default(),
        );
    }
    out.push_str("</table>\n");
}

fn operation(out: &mut String, doc: &Document, op: &Operation) {
    let channel = doc.channel(&op.channel);
    let addr = channel.and_then(|c| c.address.as_deref());
    let mut search = format!("{} {} {}", op.id, op.action.as_str(), op.channel);
    for text in [addr, op.summary.as_deref(), op.title.as_deref()]
        .into_iter()
        .flatten()
    {
        search.push(' ');
        search.push_str(text);
    }
    for id in &op.messages {
        search.push(' ');
        search.push_str(id);
        if let Some(name) = doc.message(id).and_then(|m| m.name.as_deref()) {
            search.push(' ');
            search.push_str(name);
        }
    }
    let action = op.action.as_str();
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{}\" data-search=\"{}\"><h3><span class=\"badge {action}\">\
         {action}</span>{}</h3><p>",
        anchor(&op.id),
        esc(&search.to_lowercase()),
        esc(op.title.as_deref().unwrap_or(&op.id)),
    );
    match addr {
        Some(a) => {
            let _ = write!(out, "<span class=\"addr\">{}</span>", address(a));
        }
        None => out.push_str("<span class=\"mute\">address chosen at run time</span>"),
    }
    let _ = write!(
        out,
        " <span class=\"mute\">channel {}</span></p>",
        esc(&op.channel)
    );
    for text in [&op.summary, &op.description].into_iter().flatten() {
        let _ = write!(out, "<div class=\"desc\">{}</div>", markdown(text));
    }
    if let Some(c) = channel {
        channel_details(out, c);
    }
    bindings(out, "operation bindings", &op.bindings);
    for id in &op.messages {
        if let Some(m) = doc.message(id) {
            message(out, doc, m);
        }
    }
    if let Some(reply) = &op.reply {
        out.push_str("<div class=\"msg\"><strong>Reply</strong> ");
        let reply_addr = reply.address.as_deref().or_else(|| {
            reply
                .channel
                .as_deref()
                .and_then(|c| doc.channel(c))
                .and_then(|c| c.address.as_deref())
        });
        match reply_addr {
            Some(a) => {
                let _ = write!(out, "to <span class=\"addr\">{}</span>", address(a));
            }
            None => out.push_str("<span class=\"mute\">to the request's reply address</span>"),
        }
        if let Some(c) = &reply.channel {
            let _ = write!(out, " <span class=\"mute\">channel {}</span>", esc(c));
        }
        for id in &reply.messages {
            if let Some(m) = doc.message(id) {
                message(out, doc, m);
            }
        }
        out.push_str("</div>");
    }
    out.push_str("</section>\n");
}

fn channel_details(out: &mut String, c: &Channel) {
    if let Some(d) = &c.description {
        let _ = write!(out, "<div class=\"desc mute\">{}</div>", markdown(d));
    }
    if !c.parameters.is_empty() {
        out.push_str("<table><tr><th>parameter</th><th>values</th><th>description</th></tr>");
        for p in &c.parameters {
            let mut values = String::new();
            if !p.enum_values.is_empty() {
                let _ = write!(values, "one of {} ", list(&p.enum_values));
            }
            if let Some(d) = &p.default {
                let _ = write!(values, "default <code>{}</code> ", esc(d));
            }
            if !p.examples.is_empty() {
                let _ = write!(values, "e.g. {} ", list(&p.examples));
            }
            if let Some(l) = &p.location {
                let _ = write!(values, "from <code>{}</code>", esc(l));
            }
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td class=\"con\">{values}</td><td class=\"desc\">{}</td></tr>",
                esc(&p.name),
                p.description.as_deref().map(markdown).unwrap_or_default()
            );
        }
        out.push_str("</table>");
    }
    bindings(out, "channel bindings", &c.bindings);
}

fn message(out: &mut String, doc: &Document, m: &Message) {
    let _ = write!(
        out,
        "<div class=\"msg\"><strong>{}</strong> <span class=\"mute\">{}</span>",
        esc(m.title.as_deref().or(m.name.as_deref()).unwrap_or(&m.id)),
        esc(&m.content_type)
    );
    if let Some(c) = &m.correlation_id {
        let _ = write!(
            out,
            "<div class=\"con\">correlation id at <code>{}</code></div>",
            esc(&c.location)
        );
    }
    for text in [&m.summary, &m.description].into_iter().flatten() {
        let _ = write!(out, "<div class=\"desc\">{}</div>", markdown(text));
    }
    for (label, schema) in [("payload", &m.payload), ("headers", &m.headers)] {
        if let Some(schema) = schema {
            let _ = write!(
                out,
                "<details class=\"schema\" open><summary>{label}</summary><ul class=\"tree\">"
            );
            schema_node(out, doc, None, schema, false, 0, &mut BTreeSet::new());
            out.push_str("</ul></details>");
        }
    }
    for example in &m.examples {
        let text = serde_json::to_string_pretty(example).unwrap_or_default();
        let _ = write!(
            out,
            "<details><summary>example</summary><pre>{}</pre></details>",
            esc(&text)
        );
    }
    bindings(out, "message bindings", &m.bindings);
    out.push_str("</div>");
}

fn bindings(out: &mut String, label: &str, value: &Value) {
    let empty = match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    };
    if !empty {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        let _ = write!(
            out,
            "<details><summary>{label}</summary><pre>{}</pre></details>",
            esc(&text)
        );
    }
}

/// One schema as a tree item: name, type, required, constraints, then its members.
fn schema_node(
    out: &mut String,
    doc: &Document,
    name: Option<&str>,
    schema: &Value,
    required: bool,
    depth: usize,
    seen: &mut BTreeSet<String>,
) {
    let reference = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"));
    let (schema, ref_name) = match reference {
        Some(r) => match doc.schemas.get(r) {
            Some(s) if !seen.contains(r) && depth < MAX_DEPTH => (s, Some(r)),
            _ => {
                out.push_str("<li>");
                if let Some(n) = name {
                    let _ = write!(out, "<code>{}</code> ", esc(n));
                }
                let _ = write!(
                    out,
                    "<span class=\"ty\">{}</span> <span class=\"con\">(see above)</span></li>",
                    esc(r)
                );
                return;
            }
        },
        None => (schema, None),
    };
    if let Some(r) = ref_name {
        seen.insert(r.to_owned());
    }
    let children = children(schema);
    let open = if depth < 3 { " open" } else { "" };
    out.push_str("<li>");
    if !children.is_empty() {
        let _ = write!(out, "<details{open}><summary>");
    }
    if let Some(n) = name {
        let _ = write!(out, "<code>{}</code> ", esc(n));
    }
    let _ = write!(
        out,
        "<span class=\"ty\">{}</span>",
        esc(&type_label(schema, ref_name))
    );
    if required {
        out.push_str(" <span class=\"req\">required</span>");
    }
    let constraints = constraints(schema);
    if !constraints.is_empty() {
        let _ = write!(out, " <span class=\"con\">{constraints}</span>");
    }
    if !children.is_empty() {
        out.push_str("</summary>");
    }
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        let _ = write!(out, "<div class=\"desc mute\">{}</div>", markdown(d));
    }
    if !children.is_empty() {
        out.push_str("<ul>");
        for (child_name, child, child_required) in children {
            schema_node(
                out,
                doc,
                Some(&child_name),
                child,
                child_required,
                depth + 1,
                seen,
            );
        }
        out.push_str("</ul></details>");
    }
    out.push_str("</li>");
    if let Some(r) = ref_name {
        seen.remove(r);
    }
}

/// The members a schema shows: properties, items, union variants, map values.
fn children(schema: &Value) -> Vec<(String, &Value, bool)> {
    let mut out = Vec::new();
    let required: BTreeSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            out.push((k.clone(), v, required.contains(k.as_str())));
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        out.push(("items".to_owned(), items, false));
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        out.push(("additional properties".to_owned(), extra, false));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            for (i, v) in variants.iter().enumerate() {
                out.push((format!("{key} #{}", i + 1), v, false));
            }
        }
    }
    out
}

fn type_label(schema: &Value, ref_name: Option<&str>) -> String {
    let mut ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ if schema.get("oneOf").is_some() => "one of".to_owned(),
        _ if schema.get("anyOf").is_some() => "any of".to_owned(),
        _ if schema.get("allOf").is_some() => "all of".to_owned(),
        _ => "any".to_owned(),
    };
    if let Some(items) = schema
        .get("items")
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
    {
        let _ = write!(ty, " of {items}");
    }
    if let Some(f) = schema.get("format").and_then(Value::as_str) {
        let _ = write!(ty, " ({f})");
    }
    if let Some(r) = ref_name {
        let _ = write!(ty, " · {r}");
    }
    ty
}

/// Constraints, enums, defaults and examples, already escaped.
fn constraints(schema: &Value) -> String {
    let mut parts = Vec::new();
    for (key, label) in [
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("multipleOf", "multiple of"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("pattern", "pattern"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("uniqueItems", "unique items"),
        ("minProperties", "min properties"),
        ("maxProperties", "max properties"),
        ("const", "const"),
        ("default", "default"),
    ] {
        if let Some(v) = schema.get(key) {
            parts.push(format!("{label} <code>{}</code>", esc(&compact(v))));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(compact).collect();
        parts.push(format!("one of {}", list(&values)));
    }
    if let Some(examples) = schema.get("examples").and_then(Value::as_array) {
        let values: Vec<String> = examples.iter().map(compact).collect();
        parts.push(format!("e.g. {}", list(&values)));
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        parts.push("no other properties".to_owned());
    }
    parts.join(", ")
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("<code>{}</code>", esc(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An address template with its `{parameters}` marked.
fn address(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&esc(&rest[..start]));
        let _ = write!(
            out,
            "<span class=\"param\">{}</span>",
            esc(&rest[start..=start + len])
        );
        rest = &rest[start + len + 1..];
    }
    out.push_str(&esc(rest));
    out
}

/// `op-` and the id with everything but ASCII letters, digits, `-` and `_` as `.xx` (hex).
fn anchor(id: &str) -> String {
    let mut out = String::from("op-");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            let _ = write!(out, ".{b:02x}");
        }
    }
    out
}

/// Escape text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A safe Markdown subset as HTML: every character of `text` is escaped, then paragraphs,
/// `-`/`*` lists, `#` headings (as bold lines), `**bold**`, `*em*`, `` `code` `` and
/// `[text](url)` for `http:`, `https:` and `mailto:` URLs are marked up.
pub fn markdown(text: &str) -> String {
    let mut out = String::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut items: Vec<&str> = Vec::new();
    let flush = |out: &mut String, paragraph: &mut Vec<&str>, items: &mut Vec<&str>| {
        if !paragraph.is_empty() {
            let _ = write!(out, "<p>{}</p>", inline(&paragraph.join(" ")));
            paragraph.clear();
        }
        if !items.is_empty() {
            out.push_str("<ul>");
            for item in items.iter() {
                let _ = write!(out, "<li>{}</li>", inline(item));
            }
            out.push_str("</ul>");
            items.clear();
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            flush(&mut out, &mut paragraph, &mut items);
        } else if let Some(item) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            if !paragraph.is_empty() {
                let mut none = Vec::new();
                flush(&mut out, &mut paragraph, &mut none);
            }
            items.push(item);
        } else if line.starts_with('#') {
            flush(&mut out, &mut paragraph, &mut items);
            let _ = write!(
                out,
                "<p><strong>{}</strong></p>",
                inline(line.trim_start_matches('#').trim())
            );
        } else {
            if !items.is_empty() {
                let mut none = Vec::new();
                flush(&mut out, &mut none, &mut items);
            }
            paragraph.push(line);
        }
    }
    flush(&mut out, &mut paragraph, &mut items);
    out
}

/// Inline Markdown of one block; the output escapes every character of `text`.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`'
            && let Some(end) = rest[1..].find('`')
        {
            let _ = write!(out, "<code>{}</code>", esc(&rest[1..=end]));
            rest = &rest[end + 2..];
            continue;
        }
        if let Some(body) = rest.strip_prefix("**")
            && let Some(end) = body.find("**")
            && end > 0
        {
            let _ = write!(out, "<strong>{}</strong>", inline(&body[..end]));
            rest = &body[end + 2..];
            continue;
        }
        if c == '*'
            && let Some(end) = rest[1..].find('*')
            && end > 0
        {
            let _ = write!(out, "<em>{}</em>", inline(&rest[1..=end]));
            rest = &rest[end + 2..];
            continue;
        }
        if c == '['
            && let Some(close) = rest.find("](")
            && let Some(end) = rest[close + 2..].find(')')
        {
            let label = &rest[1..close];
            let url = rest[close + 2..close + 2 + end].trim();
            let lower = url.to_ascii_lowercase();
            let safe = ["http://", "https://", "mailto:"]
                .iter()
                .any(|p| lower.starts_with(p));
            if safe && !label.contains('[') {
                let _ = write!(
                    out,
                    "<a href=\"{}\" rel=\"noopener noreferrer nofollow\">{}</a>",
                    esc(url),
                    inline(label)
                );
                rest = &rest[close + 3 + end..];
                continue;
            }
        }
        out.push_str(&esc(&rest[..c.len_utf8()]));
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_a_safe_subset() {
        assert_eq!(
            markdown("Hi **you** and `x<y>`\n\n- one\n- [two](https://a.b/?q=1&r=\"2\")"),
            "<p>Hi <strong>you</strong> and <code>x&lt;y&gt;</code></p><ul><li>one</li>\
             <li><a href=\"https://a.b/?q=1&amp;r=&quot;2&quot;\" rel=\"noopener noreferrer nofollow\">two</a></li></ul>"
        );
        for hostile in [
            "<script>alert(1)</script>",
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "<img src=x onerror=alert(1)>",
            "[x](https://a\" onmouseover=\"alert(1))",
            "**<b>**",
        ] {
            let html = markdown(hostile);
            assert!(
                !html.contains("<script") && !html.contains("<img"),
                "{html}"
            );
            assert!(
                !html.to_ascii_lowercase().contains("href=\"javascript"),
                "{html}"
            );
            assert!(!html.contains("\" onmouseover"), "{html}");
        }
    }

    #[test]
    fn a_hostile_document_makes_no_markup() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/docs/hostile.yaml");
        let loaded = crate::load(&path, &Default::default()).unwrap();
        let page = render(&loaded.document);
        assert_eq!(
            page.matches("<script").count(),
            1,
            "only the page's own script"
        );
        for made in [
            "<img",
            "<svg",
            "<iframe",
            "<b ",
            "href=\"javascript",
            "hunter2",
        ] {
            assert!(!page.contains(made), "`{made}` in the page");
        }
        assert!(page.contains("<title>Hostile &lt;script&gt;document.title=&#39;pwned&#39;"));
        assert!(page.contains("href=\"https://example.org/&quot;onmouseover=&quot;"));
    }

    #[test]
    fn anchors_and_addresses_escape() {
        assert_eq!(anchor("on\"x y"), "op-on.22x.20y");
        assert_eq!(
            address("a/{id}/<b>"),
            "a/<span class=\"param\">{id}</span>/&lt;b&gt;"
        );
    }
}
