//! `$ref` resolution across files, schema naming, recursion, network policy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use asyncapi::{LoadOptions, load};
use serde_json::json;

fn project(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("asyncapi-resolve-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
        std::fs::write(&p, text).expect("write");
    }
    dir
}

#[test]
fn refs_follow_files_at_any_depth_relative_to_the_referring_file() {
    let dir = project(
        "depth",
        &[
            (
                "asyncapi.yaml",
                "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nchannels:\n  users:\n    address: users\n    messages:\n      signedUp:\n        $ref: 'messages/user.yaml#/UserSignedUp'\ncomponents:\n  schemas:\n    Local:\n      type: string\n",
            ),
            (
                "messages/user.yaml",
                "UserSignedUp:\n  name: userSignedUp\n  payload:\n    $ref: '../schemas/user.json#/User'\n",
            ),
            (
                "schemas/user.json",
                "{\n  \"User\": {\n    \"type\": \"object\",\n    \"properties\": {\n      \"address\": {\"$ref\": \"common/address.yaml\"},\n      \"friends\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/User\"}},\n      \"tag\": {\"$ref\": \"../asyncapi.yaml#/components/schemas/Local\"}\n    }\n  }\n}\n",
            ),
            (
                "schemas/common/address.yaml",
                "type: object\nproperties:\n  street: {type: string}\n",
            ),
        ],
    );
    let main = dir.join("asyncapi.yaml");
    let loaded = load(&main, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.files,
        vec![
            main.clone(),
            dir.join("messages/user.yaml"),
            dir.join("schemas/user.json"),
            dir.join("schemas/common/address.yaml"),
        ]
    );
    let doc = loaded.document;
    let m = doc.message("signedUp").expect("message");
    assert_eq!(m.name.as_deref(), Some("userSignedUp"));
    assert_eq!(m.source.file, dir.join("messages/user.yaml"));
    assert_eq!(m.source.line, Some(1));
    assert_eq!(
        m.payload,
        Some(json!({"$ref": "#/components/schemas/User"}))
    );
    let user = &doc.schemas["User"];
    assert_eq!(
        user["properties"]["address"],
        json!({"$ref": "#/components/schemas/address"}),
        "a whole file is named after its stem"
    );
    assert_eq!(
        user["properties"]["friends"]["items"],
        json!({"$ref": "#/components/schemas/User"}),
        "recursion stays a reference"
    );
    assert_eq!(
        user["properties"]["tag"],
        json!({"$ref": "#/components/schemas/Local"}),
        "a main component keeps its key"
    );
    assert_eq!(
        doc.schemas["address"]["properties"]["street"],
        json!({"type": "string"})
    );
    assert_eq!(doc.schemas.len(), 3);
}

#[test]
fn external_schema_names_are_deduplicated() {
    let dir = project(
        "dedupe",
        &[
            (
                "asyncapi.yaml",
                "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\ncomponents:\n  schemas:\n    User:\n      type: object\n      properties:\n        other: {$ref: 'other.yaml#/User'}\n        again: {$ref: './other.yaml#/User'}\n        third: {$ref: 'third.yaml#/a~1b'}\n",
            ),
            ("other.yaml", "User:\n  type: string\n"),
            ("third.yaml", "a/b:\n  type: integer\n"),
        ],
    );
    let doc = load(&dir.join("asyncapi.yaml"), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .document;
    let props = &doc.schemas["User"]["properties"];
    assert_eq!(
        props["other"],
        json!({"$ref": "#/components/schemas/User2"})
    );
    assert_eq!(
        props["again"],
        json!({"$ref": "#/components/schemas/User2"})
    );
    assert_eq!(props["third"], json!({"$ref": "#/components/schemas/a_b"}));
    assert_eq!(doc.schemas["User2"], json!({"type": "string"}));
    assert_eq!(doc.schemas["a_b"], json!({"type": "integer"}));
}

#[test]
fn mutually_recursive_schemas_stay_finite() {
    let dir = project(
        "cycle",
        &[(
            "asyncapi.yaml",
            "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        payload: {$ref: '#/components/schemas/Tree'}\ncomponents:\n  schemas:\n    Tree:\n      type: object\n      properties:\n        children: {type: array, items: {$ref: '#/components/schemas/Forest'}}\n    Forest:\n      type: array\n      items: {$ref: '#/components/schemas/Tree'}\n",
        )],
    );
    let doc = load(&dir.join("asyncapi.yaml"), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .document;
    assert_eq!(
        doc.schemas["Forest"]["items"],
        json!({"$ref": "#/components/schemas/Tree"})
    );
    assert_eq!(
        doc.schemas["Tree"]["properties"]["children"]["items"],
        json!({"$ref": "#/components/schemas/Forest"})
    );
}

#[test]
fn network_refs_go_through_the_resolver_only_when_allowed() {
    let dir = project(
        "network",
        &[(
            "asyncapi.yaml",
            "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        payload: {$ref: 'https://example.com/schemas/s.yaml#/S'}\n",
        )],
    );
    let main = dir.join("asyncapi.yaml");
    let err = load(&main, &LoadOptions::default()).expect_err("refused by default");
    assert!(
        err.errors()
            .any(|d| d.message.contains("network reference"))
    );

    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = calls.clone();
    let options = LoadOptions {
        allow_network: true,
        network_resolver: Some(Arc::new(move |url: &str| {
            seen.lock()
                .map_err(|e| e.to_string())?
                .push(url.to_string());
            match url {
                "https://example.com/schemas/s.yaml" => Ok(
                    "S:\n  type: object\n  properties:\n    t: {$ref: 'common/t.yaml'}\n"
                        .to_string(),
                ),
                "https://example.com/schemas/common/t.yaml" => Ok("type: boolean\n".to_string()),
                other => Err(format!("unexpected {other}")),
            }
        })),
        ..LoadOptions::default()
    };
    let loaded = load(&main, &options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        *calls.lock().expect("lock"),
        [
            "https://example.com/schemas/s.yaml",
            "https://example.com/schemas/common/t.yaml"
        ]
    );
    assert_eq!(
        loaded.files,
        vec![main.clone()],
        "network documents are not files"
    );
    let doc = loaded.document;
    assert_eq!(
        doc.schemas["S"]["properties"]["t"],
        json!({"$ref": "#/components/schemas/t"})
    );
    assert_eq!(doc.schemas["t"], json!({"type": "boolean"}));

    // Allowed without a resolver: kept verbatim, with a warning.
    let kept = LoadOptions {
        allow_network: true,
        ..LoadOptions::default()
    };
    let loaded = load(&main, &kept).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.document.messages[0].payload,
        Some(json!({"$ref": "https://example.com/schemas/s.yaml#/S"}))
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("kept unresolved"))
    );
}

#[test]
fn each_file_is_read_once() {
    let dir = project(
        "once",
        &[
            (
                "asyncapi.yaml",
                "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nchannels:\n  a:\n    address: a\n    messages:\n      m: {$ref: 'lib.yaml#/m'}\n      n: {$ref: 'lib.yaml#/n'}\n",
            ),
            (
                "lib.yaml",
                "m:\n  payload: {$ref: '#/s'}\nn:\n  payload: {$ref: '#/s'}\ns:\n  type: string\n",
            ),
        ],
    );
    let loaded =
        load(&dir.join("asyncapi.yaml"), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let reads = loaded
        .files
        .iter()
        .filter(|f| f.ends_with("lib.yaml"))
        .count();
    assert_eq!(reads, 1, "{:?}", loaded.files);
    let doc = loaded.document;
    assert_eq!(doc.channel("a").expect("a").messages, ["m", "n"]);
    assert_eq!(doc.schemas.len(), 1);
    assert_eq!(doc.schemas["s"], json!({"type": "string"}));
    assert!(Path::new(&doc.message("n").expect("n").source.file).ends_with("lib.yaml"));
}

#[test]
fn traits_from_other_files_keep_their_relative_refs() {
    let dir = project(
        "traits",
        &[
            (
                "spec/asyncapi.yaml",
                "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nchannels:\n  a:\n    address: a\n    messages:\n      m:\n        payload: {type: string}\n        traits:\n          - $ref: '../lib/traits.yaml#/common'\n",
            ),
            (
                "lib/traits.yaml",
                "common:\n  headers:\n    $ref: 'schemas/headers.yaml#/Headers'\n  correlationId:\n    $ref: '#/cid'\ncid:\n  location: '$message.header#/id'\n",
            ),
            (
                "lib/schemas/headers.yaml",
                "Headers:\n  type: object\n  properties:\n    id: {type: string}\n",
            ),
        ],
    );
    let options = LoadOptions {
        root: Some(dir.clone()),
        ..LoadOptions::default()
    };
    let doc = load(&dir.join("spec/asyncapi.yaml"), &options)
        .unwrap_or_else(|e| panic!("{e}"))
        .document;
    let m = doc.message("m").expect("m");
    assert_eq!(
        m.headers,
        Some(json!({"$ref": "#/components/schemas/Headers"}))
    );
    assert_eq!(
        doc.schemas["Headers"]["properties"]["id"],
        json!({"type": "string"})
    );
    assert_eq!(
        m.correlation_id.as_ref().map(|c| c.location.as_str()),
        Some("$message.header#/id")
    );
}

#[test]
fn yaml_merge_keys_are_applied() {
    let dir = project(
        "merge",
        &[(
            "asyncapi.yaml",
            "asyncapi: 3.0.0\ninfo: {title: T, version: '1'}\nx-base: &base\n  address: shared\n  description: from anchor\nchannels:\n  a:\n    <<: *base\n    description: own\n",
        )],
    );
    let doc = load(&dir.join("asyncapi.yaml"), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .document;
    let a = doc.channel("a").expect("a");
    assert_eq!(a.address.as_deref(), Some("shared"));
    assert_eq!(a.description.as_deref(), Some("own"));
}

#[test]
fn version_3_1_documents_load() {
    let dir = project(
        "v31",
        &[(
            "asyncapi.json",
            "{\"asyncapi\": \"3.1.0\", \"info\": {\"title\": \"T\", \"version\": \"1\"},\n \"channels\": {\"a\": {\"address\": \"a/{id}\", \"parameters\": {\"id\": {}}}}}",
        )],
    );
    let doc = load(&dir.join("asyncapi.json"), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .document;
    assert_eq!(doc.source_version, "3.1.0");
    let a = doc.channel("a").expect("a");
    assert_eq!(a.parameters[0].name, "id");
    assert_eq!(a.source.line, Some(2));
    assert_eq!(a.source.column, Some(15));
}
