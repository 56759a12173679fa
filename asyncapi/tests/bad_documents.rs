//! Table-driven: each bad document gives an error with the expected message and location.

use std::path::{Path, PathBuf};

use asyncapi::{Diagnostic, LoadOptions, Severity, load};

struct Case {
    name: &'static str,
    /// The main file's name (in `<case>/spec/`).
    file: &'static str,
    text: &'static str,
    /// Other files, relative to `<case>/spec/`.
    extra: &'static [(&'static str, &'static str)],
    /// Expected message fragment.
    message: &'static str,
    /// Expected JSON pointer (exact).
    pointer: &'static str,
    /// Expected line (exact), `None` to not check.
    line: Option<u32>,
}

const CASES: &[Case] = &[
    Case {
        name: "server_variable_undefined",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nservers:\n  prod:\n    host: 'broker:{port}'\n    protocol: mqtt\n",
        extra: &[],
        message: "server `prod` uses variable `{port}` but does not define it",
        pointer: "#/servers/prod",
        line: Some(6),
    },
    Case {
        name: "server_variable_default_not_in_enum_v2",
        file: "asyncapi.yaml",
        text: "asyncapi: 2.6.0\ninfo:\n  title: T\n  version: '1'\nservers:\n  prod:\n    url: 'broker:{port}'\n    protocol: mqtt\n    variables:\n      port:\n        enum: ['1883']\n        default: '8883'\nchannels: {}\n",
        extra: &[],
        message: "server variable `port` has default `8883`, which is not one of its enum values",
        pointer: "#/servers/prod/variables/port",
        line: Some(10),
    },
    Case {
        name: "duplicate_yaml_key",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  title: U\n  version: '1'\n",
        extra: &[],
        message: "duplicate entry with key \"title\"",
        pointer: "#/info/title",
        line: Some(4),
    },
    Case {
        name: "json_written_yaml_wrong_type",
        file: "asyncapi.yaml",
        text: "{\"asyncapi\": \"3.0.0\",\n \"info\": {\"title\": \"T\", \"version\": \"1\"},\n \"channels\": {\"a\": {\"address\": 7}}}\n",
        extra: &[],
        message: "`address` must be a string or null, found a number",
        pointer: "#/channels/a/address",
        line: Some(3),
    },
    Case {
        name: "yaml_syntax_error",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: [unclosed\n  version: '1'\n",
        extra: &[],
        message: "invalid YAML",
        pointer: "",
        line: Some(4),
    },
    Case {
        name: "json_syntax_error",
        file: "asyncapi.json",
        text: "{\n  \"asyncapi\": \"3.0.0\",\n}\n",
        extra: &[],
        message: "invalid JSON",
        pointer: "",
        line: Some(3),
    },
    Case {
        name: "missing_version",
        file: "asyncapi.yaml",
        text: "info:\n  title: T\n  version: '1'\n",
        extra: &[],
        message: "missing `asyncapi` version field",
        pointer: "#",
        line: Some(1),
    },
    Case {
        name: "unsupported_version",
        file: "asyncapi.yaml",
        text: "info:\n  title: T\n  version: '1'\nasyncapi: 4.0.0\n",
        extra: &[],
        message: "unsupported AsyncAPI version `4.0.0`",
        pointer: "#/asyncapi",
        line: Some(4),
    },
    Case {
        name: "version_not_a_string",
        file: "asyncapi.yaml",
        text: "asyncapi: 3\n",
        extra: &[],
        message: "`asyncapi` must be a string, found a number",
        pointer: "#/asyncapi",
        line: Some(1),
    },
    Case {
        name: "top_level_list",
        file: "asyncapi.yaml",
        text: "- asyncapi\n- 3.0.0\n",
        extra: &[],
        message: "must be a mapping at the top level, found a list",
        pointer: "#",
        line: Some(1),
    },
    Case {
        name: "missing_info",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\nchannels: {}\n",
        extra: &[],
        message: "missing the required field `info`",
        pointer: "#",
        line: Some(1),
    },
    Case {
        name: "missing_title",
        file: "asyncapi.yaml",
        text: "asyncapi: 2.6.0\ninfo:\n  version: '1'\nchannels: {}\n",
        extra: &[],
        message: "`info` is missing the required field `title`",
        pointer: "#/info",
        line: Some(2),
    },
    Case {
        name: "wrong_type_description",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\n  description: 5\n",
        extra: &[],
        message: "`description` must be a string, found a number",
        pointer: "#/info/description",
        line: Some(5),
    },
    Case {
        name: "wrong_type_channels",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  - a\n",
        extra: &[],
        message: "`channels` must be a mapping, found a list",
        pointer: "#/channels",
        line: Some(5),
    },
    Case {
        name: "dangling_local_ref",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        $ref: '#/components/messages/nope'\n",
        extra: &[],
        message: "reference `#/components/messages/nope` does not resolve",
        pointer: "#/channels/a/messages/m",
        line: Some(10),
    },
    Case {
        name: "dangling_file_ref",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    $ref: './missing.yaml#/a'\n",
        extra: &[],
        message: "cannot read referenced file",
        pointer: "#/channels/a",
        line: Some(7),
    },
    Case {
        name: "dangling_pointer_in_other_file",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    $ref: 'common/channels.yaml#/b'\n",
        extra: &[("common/channels.yaml", "a:\n  address: a\n")],
        message: "nothing at `#/b`",
        pointer: "#/channels/a",
        line: Some(7),
    },
    Case {
        name: "ref_cycle",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        $ref: '#/components/messages/x'\ncomponents:\n  messages:\n    x:\n      $ref: '#/components/messages/y'\n    y:\n      $ref: '#/components/messages/x'\n",
        extra: &[],
        message: "reference cycle",
        pointer: "#/channels/a/messages/m",
        line: Some(10),
    },
    Case {
        name: "ref_cycle_across_files",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    $ref: 'b.yaml#/ch'\n",
        extra: &[("b.yaml", "ch:\n  $ref: 'asyncapi.yaml#/channels/a'\n")],
        message: "reference cycle",
        pointer: "#/channels/a",
        line: Some(7),
    },
    Case {
        name: "network_ref",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        payload:\n          $ref: 'https://example.com/schemas/user.json'\n",
        extra: &[],
        message: "network reference `https://example.com/schemas/user.json` refused",
        pointer: "#/channels/a/messages/m/payload",
        line: Some(11),
    },
    Case {
        name: "ref_escaping_root",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\ncomponents:\n  schemas:\n    User:\n      $ref: '../outside.yaml#/User'\n",
        extra: &[("../outside.yaml", "User:\n  type: object\n")],
        message: "escapes the spec's root folder",
        pointer: "#/components/schemas/User",
        line: Some(8),
    },
    Case {
        name: "fragment_not_a_pointer",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\ncomponents:\n  schemas:\n    User:\n      $ref: '#User'\n",
        extra: &[],
        message: "has a fragment that is not a JSON pointer",
        pointer: "#/components/schemas/User",
        line: Some(8),
    },
    Case {
        name: "syntax_error_in_referenced_file",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\ncomponents:\n  schemas:\n    User:\n      $ref: 'user.yaml'\n",
        extra: &[("user.yaml", "type: object\nproperties: {a: [}\n")],
        message: "invalid YAML",
        pointer: "",
        line: Some(2),
    },
    Case {
        name: "duplicate_operation_id_v2",
        file: "asyncapi.yaml",
        text: "asyncapi: 2.6.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    publish:\n      operationId: same\n  b:\n    subscribe:\n      operationId: same\n",
        extra: &[],
        message: "duplicate operationId `same`",
        pointer: "#/channels/b/subscribe/operationId",
        line: Some(11),
    },
    Case {
        name: "duplicate_message_id_v2",
        file: "asyncapi.yaml",
        text: "asyncapi: 2.6.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    publish:\n      message:\n        messageId: m\n  b:\n    publish:\n      message:\n        messageId: m\n",
        extra: &[],
        message: "duplicate messageId `m`",
        pointer: "#/channels/b/publish/message/messageId",
        line: Some(13),
    },
    Case {
        name: "parameter_unused",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    address: 'user'\n    parameters:\n      userId:\n        description: id\n",
        extra: &[],
        message: "defines parameter `userId` that its address `user` does not use",
        pointer: "#/channels/user/parameters/userId",
        line: Some(9),
    },
    Case {
        name: "address_unclosed_brace",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    address: 'user/{userId'\n",
        extra: &[],
        message: "unclosed `{` in address",
        pointer: "#/channels/user",
        line: Some(6),
    },
    Case {
        name: "operation_channel_not_a_ref",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\noperations:\n  op:\n    action: send\n    channel: user\n",
        extra: &[],
        message: "`channel` must be a `$ref` to a channel in `channels`",
        pointer: "#/operations/op/channel",
        line: Some(8),
    },
    Case {
        name: "operation_channel_outside_channels",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\noperations:\n  op:\n    action: send\n    channel:\n      $ref: '#/components/channels/user'\ncomponents:\n  channels:\n    user:\n      address: user\n",
        extra: &[],
        message: "which is not a channel of `channels`",
        pointer: "#/operations/op/channel",
        line: Some(8),
    },
    Case {
        name: "operation_message_not_in_channel",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    address: user\n    messages:\n      a:\n        payload: {type: string}\n  other:\n    address: other\n    messages:\n      b:\n        payload: {type: string}\noperations:\n  op:\n    action: send\n    channel:\n      $ref: '#/channels/user'\n    messages:\n      - $ref: '#/channels/other/messages/b'\n",
        extra: &[],
        message: "which is not a message of channel `user`",
        pointer: "#/operations/op/messages/0",
        line: Some(22),
    },
    Case {
        name: "invalid_action",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    address: user\noperations:\n  op:\n    action: publish\n    channel:\n      $ref: '#/channels/user'\n",
        extra: &[],
        message: "has action `publish`; it must be `send` or `receive`",
        pointer: "#/operations/op/action",
        line: Some(10),
    },
    Case {
        name: "reply_address_not_runtime_expression",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  req:\n    address: req\n  res:\n    address: null\noperations:\n  op:\n    action: receive\n    channel:\n      $ref: '#/channels/req'\n    reply:\n      channel:\n        $ref: '#/channels/res'\n      address:\n        location: 'header.replyTo'\n",
        extra: &[],
        message: "reply address location `header.replyTo` is not a valid runtime expression",
        pointer: "#/operations/op/reply",
        line: Some(15),
    },
    Case {
        name: "correlation_id_bad_location",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        correlationId:\n          location: '$message.body#/id'\n",
        extra: &[],
        message: "correlationId location `$message.body#/id` is not a valid runtime expression",
        pointer: "#/channels/a/messages/m/correlationId",
        line: Some(10),
    },
    Case {
        name: "unknown_security_scheme_v2",
        file: "asyncapi.yaml",
        text: "asyncapi: 2.6.0\ninfo:\n  title: T\n  version: '1'\nservers:\n  prod:\n    url: broker:1883\n    protocol: mqtt\n    security:\n      - nope: []\nchannels: {}\n",
        extra: &[],
        message: "unknown security scheme `nope`",
        pointer: "#/servers/prod/security/0/nope",
        line: Some(10),
    },
    Case {
        name: "server_missing_host",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nservers:\n  prod:\n    protocol: mqtt\n",
        extra: &[],
        message: "server `prod` is missing the required field `host`",
        pointer: "#/servers/prod",
        line: Some(6),
    },
    Case {
        name: "parameter_default_not_in_enum",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    address: 'user/{env}'\n    parameters:\n      env:\n        enum: [dev, prod]\n        default: test\n",
        extra: &[],
        message: "has default `test`, which is not one of its enum values",
        pointer: "#/channels/user/parameters/env",
        line: Some(9),
    },
    Case {
        name: "channel_server_not_a_server_ref",
        file: "asyncapi.yaml",
        text: "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    address: user\n    servers:\n      - $ref: '#/components/servers/prod'\ncomponents:\n  servers:\n    prod:\n      host: h\n      protocol: mqtt\n",
        extra: &[],
        message: "lists a server that is not a `$ref` to an entry of `servers`",
        pointer: "#/channels/user/servers/0",
        line: Some(9),
    },
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("asyncapi-bad-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("spec")).expect("scratch dir");
    dir.join("spec")
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn bad_documents_give_precise_errors() {
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for case in CASES {
        let dir = scratch(case.name);
        let main = write(&dir, case.file, case.text);
        for (rel, text) in case.extra {
            write(&dir, rel, text);
        }
        let diags = match load(&main, &LoadOptions::default()) {
            Ok(_) => {
                failures.push(format!("{}: loaded without errors", case.name));
                continue;
            }
            Err(d) => d,
        };
        let hit = diags
            .errors()
            .find(|d: &&Diagnostic| d.message.contains(case.message));
        match hit {
            None => failures.push(format!(
                "{}: no error containing {:?}; got:\n{diags}",
                case.name, case.message
            )),
            Some(d) => {
                assert_eq!(d.severity, Severity::Error);
                if d.pointer != case.pointer || (case.line.is_some() && d.line != case.line) {
                    failures.push(format!(
                        "{}: expected {:?} line {:?}, got {:?} line {:?}\n{d}",
                        case.name, case.pointer, case.line, d.pointer, d.line
                    ));
                }
                if d.line.is_some() {
                    assert!(d.column.is_some(), "{}: line without column", case.name);
                }
                let shown = d.to_string();
                assert!(shown.starts_with("error: "), "{shown}");
                assert!(shown.contains("  --> "), "{shown}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The official parser accepts a channel address whose parameters and `parameters` do not
/// match, and a dynamic reply address beside a reply channel with a fixed address;
/// RustStream loads them too, with a warning that says so.
#[test]
fn rules_the_official_parser_does_not_enforce_are_warnings() {
    let cases = [
        (
            "reply_address_with_fixed_channel",
            "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  req:\n    address: req\n  res:\n    address: res\noperations:\n  op:\n    action: receive\n    channel:\n      $ref: '#/channels/req'\n    reply:\n      channel:\n        $ref: '#/channels/res'\n      address:\n        location: '$message.header#/replyTo'\n",
            "its reply channel `res` has the fixed address `res`",
            "#/operations/op/reply/address",
        ),
        (
            "address_parameter_undefined",
            "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    address: 'user/{userId}'\n",
            "uses parameter `{userId}` in its address but does not define it",
            "#/channels/user",
        ),
        (
            "parameter_unused_v2",
            "asyncapi: 2.6.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user:\n    parameters:\n      userId:\n        description: id\n    publish:\n      message:\n        payload:\n          type: string\n",
            "defines parameter `userId` that its address `user` does not use",
            "#/channels/user/parameters/userId",
        ),
        (
            "address_parameter_undefined_v2",
            "asyncapi: 2.6.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  user/{userId}:\n    publish:\n      message:\n        payload:\n          type: string\n",
            "uses parameter `{userId}`",
            "#/channels/user~1{userId}",
        ),
    ];
    for (name, text, message, pointer) in cases {
        let dir = scratch(name);
        let main = write(&dir, "asyncapi.yaml", text);
        let loaded = load(&main, &LoadOptions::default()).unwrap_or_else(|d| panic!("{name}: {d}"));
        let w = loaded
            .warnings
            .iter()
            .find(|w| w.message.contains(message))
            .unwrap_or_else(|| panic!("{name}: no warning {message:?}: {:?}", loaded.warnings));
        assert_eq!(w.pointer, pointer, "{name}");
        assert!(
            w.message.contains("official parser"),
            "{name}: {}",
            w.message
        );
    }
}

#[test]
fn unknown_schema_format_is_a_warning() {
    let dir = scratch("unknown_schema_format");
    let main = write(
        &dir,
        "asyncapi.yaml",
        "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        payload:\n          schemaFormat: application/x-custom;version=1\n          schema: {type: string}\n",
    );
    let loaded = load(&main, &LoadOptions::default()).expect("loads with a warning");
    let w = loaded
        .warnings
        .iter()
        .find(|w| {
            w.message
                .contains("unknown schemaFormat `application/x-custom;version=1`")
        })
        .expect("warning");
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.pointer, "#/channels/a/messages/m");
    assert_eq!(w.line, Some(9));
    let m = loaded.document.message("m").expect("message");
    assert_eq!(m.payload, Some(serde_json::json!({"type": "string"})));
}

#[test]
fn unknown_fields_are_errors_where_the_official_schema_allows_none() {
    let dir = scratch("unknown_fields");
    let main = write(
        &dir,
        "asyncapi.yaml",
        "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchanels: {}\nx-ok: 1\n",
    );
    let diags = load(&main, &LoadOptions::default()).expect_err("the official schema refuses it");
    assert_eq!(diags.0.len(), 1, "{diags}");
    let w = &diags.0[0];
    assert_eq!(
        w.message,
        "unknown field `chanels` in the document root is not allowed by the official schema"
    );
    assert_eq!(w.hint.as_deref(), Some("did you mean `channels`?"));
    assert_eq!(
        (w.pointer.as_str(), w.line, w.column),
        ("#/chanels", Some(5), Some(1))
    );
    assert_eq!(
        w.to_string(),
        format!(
            "error: unknown field `chanels` in the document root is not allowed by the official schema\n  --> {}:5:1\n   = at #/chanels\n   = hint: did you mean `channels`?",
            main.display()
        )
    );
}

#[test]
fn every_error_is_reported_in_one_pass() {
    let dir = scratch("many_errors");
    let main = write(
        &dir,
        "asyncapi.yaml",
        "asyncapi: 3.0.0\ninfo:\n  title: T\n  version: '1'\nchannels:\n  a:\n    address: 'a/{x}'\n    messages:\n      m:\n        $ref: '#/nope'\noperations:\n  op:\n    action: jump\n    channel:\n      $ref: '#/channels/a'\n",
    );
    let diags = load(&main, &LoadOptions::default()).expect_err("invalid");
    let messages: Vec<&str> = diags.errors().map(|d| d.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("does not resolve")),
        "{diags}"
    );
    assert!(
        diags
            .warnings()
            .any(|w| w.message.contains("uses parameter `{x}`")),
        "{diags}"
    );
    assert!(
        messages.iter().any(|m| m.contains("action `jump`")),
        "{diags}"
    );
    assert!(
        diags.to_string().ends_with("2 errors, 1 warning"),
        "{diags}"
    );
}
