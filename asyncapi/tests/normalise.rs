//! What the normalised model says about real corpus documents, and how traits merge.

mod common;

use std::path::Path;

use asyncapi::{Action, LoadOptions, load, load_str};
use common::*;
use serde_json::json;

#[test]
fn streetlights_v2_publish_means_the_application_receives() {
    let p = corpus().join("spec-v2.6.0/streetlights-mqtt.yml");
    let doc = load(&p, &LoadOptions::default()).expect("loads").document;
    assert_eq!(doc.source_version, "2.6.0");
    assert_eq!(doc.info.title, "Streetlights MQTT API");
    let server = doc.server("production").expect("server");
    assert_eq!(server.protocol, "mqtt");
    assert_eq!(server.host, "test.mosquitto.org:{port}");
    assert_eq!(server.variables[0].name, "port");
    let op = doc.operation("receiveLightMeasurement").expect("op");
    assert_eq!(
        op.action,
        Action::Receive,
        "2.x publish = application receives"
    );
    let ch = doc.channel(&op.channel).expect("channel");
    assert_eq!(
        ch.address.as_deref(),
        Some("smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured")
    );
    assert_eq!(ch.parameters[0].name, "streetlightId");
    assert_eq!(op.messages, ["lightMeasured"]);
    let send = doc.operation("turnOn").expect("turnOn");
    assert_eq!(
        send.action,
        Action::Send,
        "2.x subscribe = application sends"
    );
    let m = doc.message("lightMeasured").expect("message");
    assert_eq!(m.content_type, "application/json");
    assert_eq!(
        m.payload,
        Some(json!({"$ref": "#/components/schemas/lightMeasuredPayload"}))
    );
    assert_eq!(
        doc.schemas["lightMeasuredPayload"]["properties"]["sentAt"],
        json!({"$ref": "#/components/schemas/sentAt"})
    );
    // 2.x message traits are merged (the trait's headers).
    assert!(m.headers.is_some(), "commonHeaders trait merged");
    assert!(m.source.line.is_some());
    assert!(m.source.pointer.starts_with("#/components/messages/"));
}

#[test]
fn streetlights_kafka_v3_merges_traits_and_shares_messages() {
    let p = corpus().join("spec-v3.0.0/streetlights-kafka-asyncapi.yml");
    let loaded = load(&p, &LoadOptions::default()).expect("loads");
    let doc = loaded.document;
    assert_eq!(loaded.files, vec![p.clone()]);
    let on = doc.channel("lightTurnOn").expect("channel");
    let off = doc.channel("lightTurnOff").expect("channel");
    assert_eq!(on.messages, ["turnOnOff"]);
    assert_eq!(
        off.messages,
        ["turnOnOff"],
        "one message, used by two channels"
    );
    assert_eq!(
        doc.messages.iter().filter(|m| m.id == "turnOnOff").count(),
        1
    );
    let op = doc.operation("turnOn").expect("op");
    assert_eq!(op.action, Action::Send);
    assert_eq!(op.channel, "lightTurnOn");
    assert_eq!(op.messages, ["turnOnOff"]);
    assert_eq!(
        op.bindings["kafka"]["clientId"]["enum"],
        json!(["my-app-id"]),
        "operation trait merged"
    );
    let m = doc.message("lightMeasured").expect("message");
    assert_eq!(
        m.headers.as_ref().expect("trait headers")["properties"]["my-app-header"]["maximum"],
        json!(100)
    );
    let server = doc.server("scram-connections").expect("server");
    assert_eq!(server.security[0].scheme, "saslScram");
    assert_eq!(
        doc.security_scheme("saslScram")
            .expect("scheme")
            .scheme_type,
        "scramSha256"
    );
    let line = doc.channel("lightingMeasured").expect("ch").source.line;
    assert_eq!(line, Some(40));
}

#[test]
fn kraken_replies_default_to_all_messages_of_the_reply_channel() {
    let p =
        corpus().join("spec-v3.0.0/kraken-websocket-request-reply-multiple-channels-asyncapi.yml");
    let doc = load(&p, &LoadOptions::default()).expect("loads").document;
    let ping = doc.operation("receivePing").expect("op");
    let reply = ping.reply.as_ref().expect("reply");
    assert_eq!(reply.channel.as_deref(), Some("pong"));
    assert_eq!(reply.messages, doc.channel("pong").expect("pong").messages);
    let unsub = doc.operation("unsubscribe").expect("op");
    assert_eq!(
        unsub.reply.as_ref().expect("reply").messages,
        ["subscriptionStatus"]
    );
}

#[test]
fn correlation_ids_and_headers_are_kept() {
    let p = corpus().join("spec-v3.0.0/correlation-id-asyncapi.yml");
    let doc = load(&p, &LoadOptions::default()).expect("loads").document;
    let with_cid: Vec<_> = doc
        .messages
        .iter()
        .filter_map(|m| m.correlation_id.as_ref())
        .collect();
    assert!(!with_cid.is_empty());
    for c in with_cid {
        assert!(c.location.starts_with("$message."), "{}", c.location);
    }
}

#[test]
fn social_media_v3_resolves_relative_files_at_any_depth() {
    let p = corpus().join("spec-v3.0.0/social-media/backend/asyncapi.yaml");
    let loaded = load(&p, &options_for(&p)).expect("loads");
    let names: Vec<String> = loaded
        .files
        .iter()
        .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for f in [
        "asyncapi.yaml",
        "servers.yaml",
        "messages.yaml",
        "schemas.yaml",
        "parameters.yaml",
    ] {
        assert!(
            names.contains(&f.to_string()),
            "{f} not reported in {names:?}"
        );
    }
    let doc = loaded.document;
    let server = doc.server("websiteWebSocketServer").expect("server");
    assert_eq!(server.host, "mycompany.com");
    assert!(server.source.file.ends_with("common/servers.yaml"));
    let m = doc.message("commentLiked").expect("message");
    assert!(m.source.file.ends_with("common/messages.yaml"));
    assert_eq!(m.source.pointer, "#/commentLiked");
    assert_eq!(m.source.line, Some(1));
    assert_eq!(
        m.payload,
        Some(json!({"$ref": "#/components/schemas/commentLikedPayload"}))
    );
    // `#/commentId` inside schemas.yaml is relative to schemas.yaml.
    assert_eq!(
        doc.schemas["commentLikedPayload"]["properties"]["commentId"]["allOf"][0],
        json!({"$ref": "#/components/schemas/commentId"})
    );
    assert_eq!(doc.schemas["commentId"], json!({"type": "string"}));
    let ch = doc.channel("commentsCountChange").expect("channel");
    assert_eq!(
        ch.parameters[0].description.as_deref(),
        Some("ID of the comment")
    );
    assert_eq!(ch.servers, ["mosquitto"]);
    // By default the root is the nearest folder with a `Cargo.toml` or `.git` (the `tests`
    // crate here), so the project loads as is.
    assert!(load(&p, &LoadOptions::default()).is_ok());
    // With a root below `../common`, the same document is refused.
    let below = LoadOptions {
        root: p.parent().map(Path::to_path_buf),
        ..LoadOptions::default()
    };
    let err = load(&p, &below).expect_err("escapes root");
    assert!(
        err.errors()
            .any(|d| d.message.contains("escapes the spec's root folder"))
    );
    let allowed = LoadOptions {
        allow_outside_root: true,
        ..below
    };
    assert!(load(&p, &allowed).is_ok());
}

#[test]
fn adeo_gives_precise_diagnostics() {
    let p = corpus().join("spec-v3.0.0/adeo-kafka-request-reply-asyncapi.yml");
    let err = load(&p, &LoadOptions::default()).expect_err("adeo is invalid");
    // The official parser accepts a dynamic reply address beside a fixed reply channel
    // address: a warning.
    let reply = err
        .warnings()
        .find(|d| {
            d.message
                .contains("reply channel `costingResponse` has the fixed address")
        })
        .unwrap_or_else(|| panic!("no reply diagnostic in\n{err}"));
    assert_eq!(reply.pointer, "#/operations/requestCosting/reply/address");
    assert_eq!((reply.line, reply.column), (Some(131), Some(9)));
    assert!(
        reply
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("should be null"))
    );
    let network: Vec<_> = err
        .errors()
        .filter(|d| d.message.starts_with("network reference `https://"))
        .collect();
    assert_eq!(network.len(), 3, "{err}");
    assert!(
        network
            .iter()
            .any(|d| d.pointer == "#/components/messages/costingResponse/bindings/kafka/key")
    );
    // With network references accepted (kept verbatim), the official schema's complaint
    // remains (the Kafka binding `key` reference matches more than one `oneOf` branch), as
    // with the official parser.
    let lenient = LoadOptions {
        allow_network: true,
        ..LoadOptions::default()
    };
    let err = load(&p, &lenient).expect_err("still invalid");
    let errors: Vec<_> = err.errors().collect();
    assert!(!errors.is_empty(), "{err}");
    assert!(
        errors
            .iter()
            .all(|d| d.message.contains("official AsyncAPI 3.0.0 schema")
                && d.pointer.contains("/bindings/kafka/key")),
        "{err}"
    );
    assert!(err.warnings().count() >= 3, "kept refs are warned about");
}

#[test]
fn traits_merge_by_version_rules() {
    let v2 = "asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\nchannels:\n  a:\n    publish:\n      operationId: op\n      summary: own\n      traits:\n        - summary: trait\n          description: from trait\n      message:\n        contentType: text/plain\n        traits:\n          - contentType: application/xml\n";
    let doc = load_str(v2, Path::new("v2.yaml"), &LoadOptions::default())
        .expect("loads")
        .document;
    let op = doc.operation("op").expect("op");
    assert_eq!(op.summary.as_deref(), Some("trait"), "2.x: the trait wins");
    assert_eq!(op.description.as_deref(), Some("from trait"));
    assert_eq!(doc.messages[0].content_type, "application/xml");

    let v3 = "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\ndefaultContentType: application/avro\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        contentType: text/plain\n        traits:\n          - contentType: application/xml\n            summary: from trait\n      n:\n        payload: {type: string}\noperations:\n  op:\n    action: send\n    channel: {$ref: '#/channels/a'}\n    summary: own\n    traits:\n      - summary: trait\n        description: from trait\n";
    let doc = load_str(v3, Path::new("v3.yaml"), &LoadOptions::default())
        .expect("loads")
        .document;
    let op = doc.operation("op").expect("op");
    assert_eq!(op.summary.as_deref(), Some("own"), "3.x: the object wins");
    assert_eq!(op.description.as_deref(), Some("from trait"));
    assert_eq!(
        op.messages,
        ["m", "n"],
        "no list: all the channel's messages"
    );
    let m = doc.message("m").expect("m");
    assert_eq!(m.content_type, "text/plain");
    assert_eq!(m.summary.as_deref(), Some("from trait"));
    assert_eq!(
        doc.message("n").expect("n").content_type,
        "application/avro",
        "defaultContentType applies"
    );
}

#[test]
fn derived_v2_operation_ids_are_unique() {
    let text = "asyncapi: 2.6.0\ninfo: {title: T, version: '1'}\nchannels:\n  a/b:\n    publish: {}\n  a_b:\n    publish: {}\n    subscribe: {}\n";
    let doc = load_str(text, Path::new("ids.yaml"), &LoadOptions::default())
        .expect("loads")
        .document;
    let ids: Vec<&str> = doc.operations.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["publishAB", "publishAB2", "subscribeAB"]);
    let channels: Vec<&str> = doc.channels.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(channels, ["a_b", "a_b2"]);
    assert_eq!(doc.channels[0].address.as_deref(), Some("a/b"));
    assert_eq!(doc.operations[1].channel, "a_b2");
}
