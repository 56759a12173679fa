//! `codegen-large`: generate the code for a synthetic 1,000-operation spec.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::opts::Opts;
use crate::{BenchResult, Line, median};

/// Target budget in seconds.
const TARGET_S: f64 = 1.0;

/// A valid AsyncAPI 3.0 document with `operations` operations (half received, half sent), each
/// on its own parameterised channel with its own message and payload schema; every schema
/// references a shared one.
pub fn synthetic_spec(operations: usize) -> Value {
    let mut channels = Map::new();
    let mut ops = Map::new();
    let mut messages = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "Meta".into(),
        json!({
            "type": "object",
            "required": ["source"],
            "properties": {
                "source": {"type": "string", "description": "Who produced it."},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        }),
    );
    for i in 0..operations {
        channels.insert(
            format!("channel{i}"),
            json!({
                "address": format!("svc.area{}.item{i}.{{itemId}}", i % 17),
                "parameters": {"itemId": {"description": "Id of the item."}},
                "messages": {format!("message{i}"): {"$ref": format!("#/components/messages/message{i}")}}
            }),
        );
        ops.insert(
            format!("operation{i}"),
            json!({
                "action": if i % 2 == 0 { "receive" } else { "send" },
                "summary": format!("Operation number {i}."),
                "channel": {"$ref": format!("#/channels/channel{i}")},
                "messages": [{"$ref": format!("#/channels/channel{i}/messages/message{i}")}]
            }),
        );
        messages.insert(
            format!("message{i}"),
            json!({"payload": {"$ref": format!("#/components/schemas/Payload{i}")}}),
        );
        schemas.insert(
            format!("Payload{i}"),
            json!({
                "type": "object",
                "required": ["id", "name", "ts"],
                "properties": {
                    "id": {"type": "integer", "format": "int64"},
                    "name": {"type": "string", "description": format!("Name of item {i}.")},
                    "ts": {"type": "integer"},
                    "amount": {"type": "number"},
                    "active": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "status": {"type": "string", "enum": ["new", "active", "retired"]},
                    "meta": {"$ref": "#/components/schemas/Meta"}
                }
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {"title": "Large Service", "version": "1.0.0"},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": ops,
        "components": {"messages": messages, "schemas": schemas}
    })
}

/// `codegen-large`.
pub fn codegen_large(opts: &Opts) -> BenchResult<Line> {
    let dir = std::env::temp_dir().join(format!("ruststream-bench-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("large.json");
    let text = serde_json::to_string_pretty(&synthetic_spec(opts.operations))?;
    std::fs::write(&path, &text)?;
    let config = ruststream_build::Config::new().emit_rerun_if_changed(false);
    let mut times = Vec::new();
    let mut load_times = Vec::new();
    let mut code_bytes = 0;
    for _ in 0..opts.rounds {
        let start = Instant::now();
        let code = config.generate_string(&path)?;
        times.push(start.elapsed().as_secs_f64());
        code_bytes = code.len();
        // The model alone (parse, resolve, validate, normalise): the rest is code generation.
        let start = Instant::now();
        asyncapi::load(&path, &asyncapi::LoadOptions::default())
            .map_err(|e| format!("synthetic spec rejected: {e}"))?;
        load_times.push(start.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Line::cost("codegen-large", median(&times), TARGET_S, "s")
        .with("operations", opts.operations)
        .with("load_s", crate::round(median(&load_times)))
        .with("spec_bytes", text.len())
        .with("code_bytes", code_bytes)
        .with("rounds", opts.rounds)
        .with("note", "absolute: baseline is the target budget (< 1 s)"))
}
