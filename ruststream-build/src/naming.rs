//! Rust identifiers from wire names: case conversion, keyword escaping, collision handling and
//! doc-comment escaping.

use std::collections::BTreeSet;

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

/// Keywords that can be written as raw identifiers (`r#type`).
const RAW_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "union", "unsafe", "unsized",
    "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers; they get a trailing underscore.
const NON_RAW_KEYWORDS: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Replace every character that cannot appear in an ASCII identifier: non-ASCII characters
/// become `u<hex>` words so that distinct wire names stay distinct.
fn asciify(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if c.is_ascii() {
            out.push(' ');
        } else {
            out.push_str(&format!(" u{:x} ", c as u32));
        }
    }
    out
}

/// `snake_case` identifier text for a field, module or function.
pub fn snake(raw: &str) -> String {
    let mut s = asciify(raw).to_snake_case();
    if s.is_empty() {
        s = "field".to_owned();
    }
    if s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, '_');
    }
    s
}

/// `UpperCamelCase` identifier text for a type or variant.
pub fn pascal(raw: &str) -> String {
    let mut s = asciify(raw).to_upper_camel_case();
    if s.is_empty() {
        s = "Empty".to_owned();
    }
    if s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, 'V');
    }
    // `Self` is the one keyword in UpperCamelCase, and it cannot be a raw identifier; a
    // suffix keeps derived names (`SelfValueParams`, `SelfValue2`) in UpperCamelCase.
    if s == "Self" {
        s.push_str("Value");
    }
    s
}

/// An identifier token for `text`, escaping keywords (`r#type`, `self_`).
pub fn ident(text: &str) -> Ident {
    if NON_RAW_KEYWORDS.contains(&text) {
        Ident::new(&format!("{text}_"), Span::call_site())
    } else if RAW_KEYWORDS.contains(&text) {
        Ident::new_raw(text, Span::call_site())
    } else {
        Ident::new(text, Span::call_site())
    }
}

/// A set of names already taken in one scope; [`Scope::claim`] returns a free variant.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    taken: BTreeSet<String>,
}

impl Scope {
    /// A scope where `reserved` names are already taken.
    pub fn with_reserved(reserved: &[&str]) -> Self {
        Scope {
            taken: reserved.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Claim `name`, or `name2`, `name3`, ... when taken (`name_2` for snake-case names).
    pub fn claim(&mut self, name: &str) -> String {
        if self.taken.insert(name.to_owned()) {
            return name.to_owned();
        }
        let sep = if name.contains('_') || name.chars().all(|c| !c.is_ascii_uppercase()) {
            "_"
        } else {
            ""
        };
        (2..)
            .map(|n| format!("{name}{sep}{n}"))
            .find(|candidate| self.taken.insert(candidate.clone()))
            .unwrap_or_else(|| name.to_owned())
    }
}

/// Rewrite a Markdown description so that rustdoc renders it and never compiles or links it:
/// untyped code fences become `text`, link brackets and angle brackets are escaped, bare URLs
/// become autolinks, and indentation that would start an indented code block is removed.
pub fn doc_text(description: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_fence = false;
    for line in description.trim().lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("```") {
            if in_fence {
                lines.push("```".to_owned());
            } else {
                let lang = rest.trim();
                let lang = if lang.is_empty() || lang.starts_with("rust") {
                    "text"
                } else {
                    lang
                };
                lines.push(format!("```{lang}"));
            }
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            lines.push(line.to_owned());
            continue;
        }
        // Inline links `[text](url)` are kept; other brackets would be intra-doc links.
        lines.push(escape_markdown_line(trimmed, !trimmed.contains("](")));
    }
    if in_fence {
        lines.push("```".to_owned());
    }
    lines
}

fn escape_markdown_line(line: &str, escape_brackets: bool) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.starts_with("http://") || word.starts_with("https://") {
            let end = word
                .find([')', ']', '>', '<', '"', '\'', ',', '`'])
                .unwrap_or(word.len());
            let url = word[..end].trim_end_matches(['.', ';', ':']);
            out.push('<');
            out.push_str(url);
            out.push('>');
            escape_into(&mut out, &word[url.len()..], escape_brackets);
        } else {
            escape_into(&mut out, word, escape_brackets);
        }
    }
    out
}

fn escape_into(out: &mut String, text: &str, escape_brackets: bool) {
    for c in text.chars() {
        match c {
            '[' | ']' if !escape_brackets => out.push(c),
            '[' | ']' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// Like [`doc_attrs`], with `fallback` (Markdown, not escaped) when there is neither.
pub fn doc_or(title: Option<&str>, description: Option<&str>, fallback: &str) -> TokenStream {
    let docs = doc_attrs(title, description);
    if docs.is_empty() {
        let line = format!(" {fallback}");
        quote!(#[doc = #line])
    } else {
        docs
    }
}

/// `#[doc = "..."]` attributes for an optional title and description.
pub fn doc_attrs(title: Option<&str>, description: Option<&str>) -> TokenStream {
    let mut lines = Vec::new();
    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
        lines.extend(doc_text(t));
    }
    if let Some(d) = description.filter(|d| !d.trim().is_empty()) {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.extend(doc_text(d));
    }
    let lines = lines.into_iter().map(|l| {
        let l = if l.is_empty() { l } else { format!(" {l}") };
        quote!(#[doc = #l])
    });
    quote!(#(#lines)*)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_sanitised() {
        assert_eq!(snake("userId"), "user_id");
        assert_eq!(snake("2fa"), "_2fa");
        assert_eq!(snake("$ref"), "ref");
        assert_eq!(snake(""), "field");
        assert_eq!(snake("größe"), "gr_uf6_udf_e");
        assert_eq!(pascal("light-measured"), "LightMeasured");
        assert_eq!(pascal("1st"), "V1st");
        assert_eq!(ident("type").to_string(), "r#type");
        assert_eq!(pascal("self"), "SelfValue");
        assert_eq!(ident("self").to_string(), "self_");
    }

    #[test]
    fn scope_suffixes_collisions() {
        let mut s = Scope::with_reserved(&["Handler"]);
        assert_eq!(s.claim("Handler"), "Handler2");
        assert_eq!(s.claim("user_id"), "user_id");
        assert_eq!(s.claim("user_id"), "user_id_2");
    }

    #[test]
    fn docs_cannot_inject_code_or_doctests() {
        let d = doc_text("see [link] */ `x` \"q\"\n```\nfn main() {}\n```\n    indented");
        assert_eq!(d[0], "see \\[link\\] */ `x` \"q\"");
        assert_eq!(d[1], "```text");
        assert_eq!(d[4], "indented");
        let u = doc_text("See https://example.com/a_b.");
        assert_eq!(u[0], "See <https://example.com/a_b>.");
        let l = doc_text("See [docs](https://x.example/d) or https://x.example/raw.");
        assert_eq!(
            l[0],
            "See [docs](https://x.example/d) or <https://x.example/raw>."
        );
    }
}
