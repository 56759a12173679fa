//! `Formats::time(true)`: the generated code (the `formats_time.rs` snapshot) compiles against
//! the `time` crate and reads and writes RFC 3339 date-times.

use std::path::{Path, PathBuf};

use ruststream_build::{Config, Formats};

#[allow(dead_code)]
mod formats {
    include!("../../tests/data/codegen/formats_time.rs");
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/codegen")
}

#[test]
fn time_snapshot_matches_generation() {
    let code = Config::new()
        .formats(Formats::new().time(true))
        .generate_string(data_dir().join("formats.yaml"))
        .expect("generates");
    let snapshot = data_dir().join("formats_time.rs");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&snapshot, &code).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
    assert!(
        expected == code,
        "formats_time.rs differs from the generated code (rerun with UPDATE_SNAPSHOTS=1 and review the diff)"
    );
}

#[test]
fn date_times_are_rfc3339() {
    let json = r#"{"id":"6f1c","at":"2024-02-29T23:59:58.5+01:00","expires":null,
        "seen":"2024-03-01T00:00:00Z","history":["2024-01-01T00:00:00Z"],"day":"2024-02-29",
        "alarm":"07:30:00","stamp":"2024-01-01T00:00:00Z"}"#;
    let event: formats::Event = serde_json::from_str(json).expect("decodes");
    let at: time::OffsetDateTime = event.at;
    assert_eq!(
        (at.year(), at.day(), at.hour(), at.offset().whole_hours()),
        (2024, 29, 23, 1)
    );
    assert_eq!(at.millisecond(), 500);
    let seen: Option<time::OffsetDateTime> = event.seen;
    assert_eq!(seen.map(|s| s.month()), Some(time::Month::March));
    assert_eq!(event.expires, None);
    // Positions `serde(with)` cannot reach stay strings.
    let history: Option<Vec<String>> = event.history.clone();
    assert_eq!(
        history.as_deref(),
        Some(&["2024-01-01T00:00:00Z".to_owned()][..])
    );
    let stamp: Option<String> = event.stamp.clone();
    assert_eq!(stamp.as_deref(), Some("2024-01-01T00:00:00Z"));

    let back = serde_json::to_value(&event).expect("encodes");
    assert_eq!(back["at"], "2024-02-29T23:59:58.5+01:00");
    assert_eq!(back["seen"], "2024-03-01T00:00:00Z");
    assert_eq!(back["expires"], serde_json::Value::Null);

    let missing_seen: formats::Event = serde_json::from_str(
        r#"{"id":"x","at":"2024-01-01T00:00:00Z","expires":"2024-01-02T00:00:00Z"}"#,
    )
    .expect("optional date-time may be absent");
    assert!(missing_seen.seen.is_none());
    assert!(missing_seen.expires.is_some());
    assert!(
        serde_json::to_value(&missing_seen)
            .expect("encodes")
            .get("seen")
            .is_none()
    );

    let err =
        serde_json::from_str::<formats::Event>(r#"{"id":"x","at":"yesterday","expires":null}"#);
    assert!(err.is_err(), "a non-RFC 3339 date-time is refused");
}
