//! The AsyncAPI tools' own documents (`tests/data/asyncapi-tooling-fixtures`, 91 documents from
//! parser-js, converter-js, bundler, cli, generator, modelina, jasyncapi, optimizer,
//! spec-json-schemas, studio and java-spring-cloud-stream-template): each document's verdict
//! is pinned (valid, valid with a first warning, or invalid with the first error), beside the
//! official parser's verdict (`@asyncapi/parser` 3.6.6, recorded once with its default
//! ruleset). A difference must carry its reason.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asyncapi::{LoadOptions, load};

/// RustStream's verdict.
#[derive(Debug)]
enum Verdict {
    /// Loads without warnings.
    Valid,
    /// Loads; the first warning contains the text.
    Warns(&'static str),
    /// Refused; the first error contains the text.
    Invalid(&'static str),
}
use Verdict::*;

/// (document, RustStream's verdict, the official parser accepts it, why they differ).
const TABLE: &[(&str, Verdict, bool, Option<&str>)] = &[
    (
        "asyncapi+bundler/example/example-data/social-media/comments-service/main.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+bundler/example/example-with-nested-dirs/asyncapi/receive/lightingMeasured/asyncapi.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+bundler/example/example-with-nested-dirs/asyncapi/send/lightTurnOn/asyncapi.yaml",
        Warns("channel `lightTurnOn` uses parameter `{streetlightId}` in its address "),
        true,
        None,
    ),
    (
        "asyncapi+bundler/example/v3/main.yaml",
        Invalid("operation `UserSignedUp`: message `./messages.yaml#/messages/UserSigne"),
        false,
        None,
    ),
    ("asyncapi+bundler/tests/audio.yml", Valid, true, None),
    ("asyncapi+bundler/tests/gh-185.yaml", Valid, true, None),
    (
        "asyncapi+bundler/tests/wrong-external-ref.yaml",
        Invalid("reference `./audio.yml#/components/messages/WrongReference` does not r"),
        false,
        None,
    ),
    (
        "asyncapi+bundler/tests/wrong-ref-absent.yaml",
        Invalid("unknown field `$ref` in message `subscribeUserSignedupMessage` is not "),
        false,
        None,
    ),
    (
        "asyncapi+bundler/tests/wrong-ref-not-string.yaml",
        Invalid("unknown field `$ref` in message `subscribeUserSignedupMessage` is not "),
        false,
        None,
    ),
    (
        "asyncapi+cli/assets/create-template/templates/default/asyncapi.yaml",
        Invalid("unknown field `url` in server `dev` is not allowed by the official sch"),
        false,
        None,
    ),
    (
        "asyncapi+cli/assets/examples/default-example.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/fixtures/asyncapiTestingScore.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/fixtures/external-refs/main.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/fixtures/specification-avro.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/fixtures/specification-invalid.yml",
        Invalid("unknown field `version` in the document root is not allowed by the off"),
        false,
        None,
    ),
    (
        "asyncapi+cli/test/fixtures/specification-v3.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/fixtures/specification.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/fixtures/valid-specification-latest.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/integration/bundle/feature.yaml",
        Invalid("not valid by the official AsyncAPI 2.6.0 schema: \"channels\" is a requi"),
        false,
        None,
    ),
    (
        "asyncapi+cli/test/integration/bundle/final-asyncapi.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/integration/bundle/first-asyncapi.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+cli/test/integration/bundle/first-asyncapiv3.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/input/2.6.0/for-3.0.0-with-custom-schema-format.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/input/2.6.0/for-3.0.0-with-deep-local-references.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/input/2.6.0/for-3.0.0-with-mixed-parameters.yml",
        Invalid("the document is missing the required field `info`"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/input/2.6.0/for-3.0.0-with-reference-parameter.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/input/2.6.0/for-3.0.0-with-servers-and-channels-components.yml",
        Invalid("reference `#/components/schemas/lightMeasuredPayload` does not resolve"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/input/2.6.0/for-3.0.0.yml",
        Invalid("network reference `https://example.com/message` refused"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/input/3.0.0/for-3.1.0.yml",
        Invalid("network reference `https://example.com/message` refused"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/2.0.0/gitter-streaming.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/2.0.0/slack-rtm.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/3.0.0/from-2.6.0-with-custom-schema-format.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/3.0.0/from-2.6.0-with-deep-local-references.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/3.0.0/from-2.6.0-with-mixed-parameters.yml",
        Invalid("the document is missing the required field `info`"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/3.0.0/from-2.6.0-with-reference-parameter.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/3.0.0/from-2.6.0-with-servers-and-channels-components.yml",
        Invalid("reference `#/servers/production` does not resolve: nothing at `#/serve"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/3.0.0/from-2.6.0.yml",
        Invalid("network reference `https://example.com/message` refused"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/3.1.0/from-3.0.0.yml",
        Invalid("network reference `https://example.com/message` refused"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/openapi-to-asyncapi/callbacks_and_contents.yml",
        Invalid("not valid by the official AsyncAPI 3.0.0 schema: a schema refers to th"),
        false,
        None,
    ),
    (
        "asyncapi+converter-js/test/output/openapi-to-asyncapi/operation_and_parameter.yml",
        Invalid("channel `items` defines parameter `limit` that its address `/items` do"),
        false,
        None,
    ),
    (
        "asyncapi+generator/apps/generator/test/docs/apiwithref.json",
        Invalid("network reference `https://schema.example.com/crm/shared.json` refused"),
        false,
        None,
    ),
    (
        "asyncapi+generator/apps/generator/test/docs/dummy.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+generator/apps/keeper/test/__fixtures__/asyncapi-message-validation.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+generator/packages/helpers/test/__fixtures__/asyncapi-websocket-query.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+generator/packages/templates/clients/kafka/test/__fixtures__/asyncapi-adeo.yml",
        Warns("the reply of operation `requestCosting` gives a dynamic address, but i"),
        true,
        None,
    ),
    (
        "asyncapi+generator/packages/templates/clients/websocket/test/__fixtures__/asyncapi-hoppscotch-client.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+generator/packages/templates/clients/websocket/test/__fixtures__/asyncapi-hoppscotch-server.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+generator/packages/templates/clients/websocket/test/__fixtures__/asyncapi-postman-echo.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+generator/packages/templates/clients/websocket/test/__fixtures__/asyncapi-slack-client.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+generator/packages/templates/clients/websocket/test/__fixtures__/asyncapi-websocket-components.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+jasyncapi/asyncapi-core/src/test/resources/examples/v2.6.0/schemaFormat - avro payload.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+jasyncapi/asyncapi-core/src/test/resources/examples/v3.0.0/xml/simple-string-schema.yaml",
        Warns("message `UserSignedUp` uses unknown schemaFormat `application/xml`; it"),
        true,
        None,
    ),
    (
        "asyncapi+jasyncapi/asyncapi-core/src/test/resources/json/v2/2.6.0/model/asyncapi.json",
        Invalid("reference cycle: `#/components/securitySchemes/asymmetricEncryption` n"),
        false,
        None,
    ),
    (
        "asyncapi+jasyncapi/asyncapi-core/src/test/resources/json/v3/3.0.0/model/asyncapi - wrongly extended.json",
        Invalid("reference cycle: `#/components/securitySchemes/asymmetricEncryption` n"),
        false,
        None,
    ),
    (
        "asyncapi+jasyncapi/asyncapi-core/src/test/resources/json/v3/3.0.0/model/asyncapi.json",
        Invalid("reference cycle: `#/components/securitySchemes/asymmetricEncryption` n"),
        false,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/avro-complex-test.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/avro-union-object.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/multivariable-topic-2.6.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/nested-arrays.yaml",
        Warns("server `production` defines variable `port` that it does not use"),
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/parameters-to-headers-test.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/schemas-with-duplicate-$ids.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/solace-core-banking-v1.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/solace-logistics.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/solace-order-management-v2.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+java-spring-cloud-stream-template/test/mocks/solace-point-of-sale-system.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+modelina/modelina-cli/test/fixtures/asyncapi_v3.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+modelina/test/processors/AsyncAPIInputProcessor/multiple_messages_in_operation.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+modelina/test/processors/AsyncAPIInputProcessor/operation_oneof1.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+modelina/test/processors/AsyncAPIInputProcessor/operation_with_reply.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+modelina/test/processors/AsyncAPIInputProcessor/schema_name_reflection.json",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+modelina/test/processors/AsyncAPIInputProcessor/schema_with_2_properties_referencing_one_schema.json",
        Valid,
        true,
        None,
    ),
    ("asyncapi+optimizer/examples/input.yaml", Valid, true, None),
    (
        "asyncapi+optimizer/examples/output.yaml",
        Invalid("reference `#/components/securitySchemes/apiKey` does not resolve: noth"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/packages/openapi-schema-parser/test/documents/invalid-asyncapi.yaml",
        Invalid("not valid by the official AsyncAPI 2.4.0 schema: Additional properties"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/packages/openapi-schema-parser/test/documents/valid-asyncapi.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+parser-js/packages/parser/test/mocks/nested-schemas.yaml",
        Warns("channel `test` defines parameter `testParam1` that its address `test` "),
        true,
        None,
    ),
    (
        "asyncapi+parser-js/test/good/asyncapi-complex-schema.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+parser-js/test/good/asyncapi-messages-channels.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+parser-js/test/good/asyncapi-messages-example-headers.yml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+parser-js/test/good/circular-refs.yaml",
        Valid,
        true,
        None,
    ),
    (
        "asyncapi+parser-js/test/good/zbos_mqtt-all-asyncapi.json",
        Invalid("example 0 of message `GetApplicationsRequest` does not match its payload schema"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/inexisting-local-ref.yaml",
        Invalid("reference `#/components/messages/testMessage` does not resolve: nothin"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/invalid-asyncapi-messages-example.yml",
        Invalid("not valid by the official AsyncAPI 2.2.0 schema: Additional properties"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/invalid-asyncapi-root-with-duplicate-tags.yaml",
        Invalid("duplicate tag name `user`"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/invalid-asyncapi-with-ref-with-line-break.yaml",
        Invalid("reference `# /components/parameters/streetlightId` has a fragment that"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/invalid-asyncapi.yaml",
        Invalid("unknown field `test` in the document root is not allowed by the offici"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/invalid-operation-with-oneof-and-duplicate-tags.yaml",
        Invalid("duplicate tag name `user`"),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/invalid-payload-asyncapi-format.json",
        Invalid("not valid by the official AsyncAPI 2.0.0 schema: [\"invalid_array\"] is "),
        false,
        None,
    ),
    (
        "asyncapi+parser-js/test/wrong/malformed-asyncapi.yaml",
        Invalid("invalid YAML: did not find expected key at line 19 column 11, while pa"),
        false,
        None,
    ),
    (
        "asyncapi+spec-json-schemas/test/fixtures/asyncapi.yml",
        Invalid("not valid by the official AsyncAPI 3.0.0 schema: Additional properties"),
        false,
        None,
    ),
    (
        "asyncapi+studio/apps/studio/src/examples/tutorials/invalid.yml",
        Invalid("unknown field `url` in server `mosquitto` is not allowed by the offici"),
        false,
        None,
    ),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/asyncapi-tooling-fixtures")
}

/// The documents the fixtures' index lists.
fn indexed() -> Vec<String> {
    let index = std::fs::read_to_string(fixtures().join("INDEX.tsv")).expect("INDEX.tsv");
    index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_indexed_document_has_a_pinned_verdict() {
    let listed: Vec<&str> = TABLE.iter().map(|(p, ..)| *p).collect();
    for doc in indexed() {
        assert!(
            listed.contains(&doc.as_str()),
            "{doc} has no verdict in TABLE"
        );
    }
    assert_eq!(listed.len(), indexed().len());
}

#[test]
fn verdicts_match_the_table_and_the_official_parser() {
    let mut bad = Vec::new();
    let mut agree = 0;
    for (rel, verdict, official, why) in TABLE {
        let path = fixtures().join(rel);
        // Default options: the root is the nearest folder with a `.git` or `Cargo.toml`.
        let result = load(&path, &LoadOptions::default());
        let ok = match (&result, verdict) {
            (Ok(l), Valid) => l.warnings.is_empty(),
            (Ok(l), Warns(text)) => l.warnings.first().is_some_and(|w| w.message.contains(text)),
            (Err(d), Invalid(text)) => d.errors().next().is_some_and(|e| e.message.contains(text)),
            _ => false,
        };
        if !ok {
            let got = match &result {
                Ok(l) => format!(
                    "valid, warnings: {:?}",
                    l.warnings.first().map(|w| &w.message)
                ),
                Err(d) => format!("invalid: {:?}", d.errors().next().map(|e| &e.message)),
            };
            bad.push(format!("{rel}: expected {verdict:?}, got {got}"));
        }
        if result.is_ok() == *official {
            agree += 1;
            assert!(
                why.is_none(),
                "{rel}: agrees with the official parser, drop the reason"
            );
        } else {
            assert!(
                why.is_some(),
                "{rel}: differs from the official parser without a reason"
            );
        }
        // Every error is located (file and JSON pointer).
        if let Err(d) = &result {
            for e in d.errors() {
                assert!(!e.file.as_os_str().is_empty(), "{rel}: {e}");
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(agree == TABLE.len(), "{agree} of {} agree", TABLE.len());
}

/// The largest document (670 KB, ~600 channels) is checked in well under a second (in a
/// release build; the debug build of the tests is given more).
#[test]
fn the_largest_document_is_checked_quickly() {
    let path = fixtures().join("asyncapi+parser-js/test/good/zbos_mqtt-all-asyncapi.json");
    let _warm = load(&path, &LoadOptions::default());
    let start = Instant::now();
    let _ = load(&path, &LoadOptions::default());
    let took = start.elapsed();
    let limit = if cfg!(debug_assertions) {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(1)
    };
    assert!(took < limit, "{took:?}");
}

/// `convert` output of every accepted document passes the official 3.0.0 and 3.1.0 schemas
/// (and RustStream's checks): it loads again without errors.
#[test]
fn conversions_of_accepted_documents_are_valid() {
    let mut bad = Vec::new();
    for (rel, ..) in TABLE {
        let path = fixtures().join(rel);
        let Ok(loaded) = load(&path, &LoadOptions::default()) else {
            continue;
        };
        for version in asyncapi::emit::EMITTABLE_VERSIONS {
            let text = asyncapi::emit::to_yaml_version(&loaded.document, version);
            let again = path.with_file_name(format!("converted-{version}.yaml"));
            if let Err(e) = asyncapi::load_str(&text, &again, &LoadOptions::default()) {
                bad.push(format!("{rel} as {version}:\n{e}"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}
