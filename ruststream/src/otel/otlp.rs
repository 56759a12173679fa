//! The built-in OTLP/HTTP exporter: spans as OTLP JSON (`POST /v1/traces`), over a minimal
//! HTTP/1.1 client.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde_json::{Map, Value as Json, json};

use super::http::{self, HttpUrl};
use crate::{Error, Result};

/// Where spans go when nothing is configured (a collector on this host).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Exports spans as OTLP JSON (`Content-Type: application/json`) with `POST` to a collector's
/// OTLP/HTTP traces endpoint, e.g. `http://localhost:4318/v1/traces`.
///
/// Plain `http://` only (no TLS: send to a collector or agent next to the service). The HTTP
/// client is blocking, one connection per export: run the exporter on a thread of its own —
/// [`BatchProcessor`](super::BatchProcessor) and the SDK's `BatchSpanProcessor` do — not under
/// a `SimpleSpanProcessor` on the async runtime. A retryable answer (429, 502, 503, 504) is
/// retried with backoff within the timeout; any other non-2xx answer, or running out of time,
/// fails the export (counted by the processor).
///
/// Header values (e.g. an API key) never appear in `Debug` output or errors.
#[derive(Clone)]
pub struct OtlpHttpJsonExporter {
    url: HttpUrl,
    headers: Vec<(String, String)>,
    timeout: Duration,
    resource: Json,
}

impl std::fmt::Debug for OtlpHttpJsonExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("OtlpHttpJsonExporter")
            .field("endpoint", &self.url.to_string())
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn config(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Config(format!("OTLP exporter {what}: {detail}"))
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parse `OTEL_EXPORTER_OTLP_HEADERS`-style text: `name=value,name2=value2`, values
/// percent-encoded. Errors name the entry's position, never its value.
fn parse_headers(text: &str, into: &mut Vec<(String, String)>) -> Result<()> {
    for (i, entry) in text.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let bad = || {
            config(
                "headers",
                format_args!("entry {} is not `name=value`", i + 1),
            )
        };
        let (name, value) = entry.split_once('=').ok_or_else(bad)?;
        let name = name.trim().to_ascii_lowercase();
        let value = percent_decode(value.trim()).ok_or_else(bad)?;
        if !valid_header_name(&name) || value.contains(['\r', '\n']) {
            return Err(bad());
        }
        into.retain(|(n, _)| *n != name);
        into.push((name, value));
    }
    Ok(())
}

impl OtlpHttpJsonExporter {
    /// Export to `endpoint`, the full traces URL (e.g. `http://localhost:4318/v1/traces`), with
    /// a 10 s timeout and no extra headers.
    pub fn new(endpoint: &str) -> Result<Self> {
        Ok(OtlpHttpJsonExporter {
            url: HttpUrl::parse(endpoint).map_err(|e| config("endpoint", e))?,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            resource: json!({}),
        })
    }

    /// Configured by the standard environment variables:
    ///
    /// - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), else `OTEL_EXPORTER_OTLP_ENDPOINT`
    ///   with `/v1/traces` appended, else [`DEFAULT_ENDPOINT`];
    /// - `OTEL_EXPORTER_OTLP_HEADERS`, then `OTEL_EXPORTER_OTLP_TRACES_HEADERS`
    ///   (`name=value,…`, values percent-encoded);
    /// - `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds).
    ///
    /// A `…_PROTOCOL` other than `http/json` is logged and ignored: this exporter only speaks
    /// JSON (which collectors accept on the same port as protobuf).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
            (None, None) => DEFAULT_ENDPOINT.to_owned(),
        };
        let mut exporter = Self::new(&endpoint)?;
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(text) = get(name) {
                parse_headers(&text, &mut exporter.headers)?;
            }
        }
        if let Some(ms) =
            get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").or_else(|| get("OTEL_EXPORTER_OTLP_TIMEOUT"))
        {
            let ms: u64 = ms
                .trim()
                .parse()
                .map_err(|_| config("timeout", format_args!("`{ms}` is not milliseconds")))?;
            exporter.timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(protocol) = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .filter(|p| p.trim() != "http/json")
        {
            tracing::warn!(
                %protocol,
                "the built-in OTLP exporter sends http/json; the protocol setting is ignored"
            );
        }
        Ok(exporter)
    }

    /// Add a request header (e.g. an API key). Invalid names or values are refused.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = name.trim().to_ascii_lowercase();
        if !valid_header_name(&name) || value.contains(['\r', '\n']) {
            return Err(config("header", format_args!("invalid header `{name}`")));
        }
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        Ok(self)
    }

    /// How long one export (connect, send, answer) may take; 10 s by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The traces URL spans are posted to.
    pub fn endpoint(&self) -> String {
        self.url.to_string()
    }

    /// The OTLP JSON request body (`ExportTraceServiceRequest`) for `batch`.
    pub fn encode(&self, batch: &[SpanData]) -> Json {
        encode_request(&self.resource, batch)
    }

    /// One `POST`, retried (within the timeout) while the collector answers a retryable
    /// status (429, 502, 503, 504), with 100 ms, 200 ms, 400 ms … between attempts.
    fn send(&self, batch: &[SpanData]) -> OTelSdkResult {
        let body = self.encode(batch).to_string();
        let deadline = std::time::Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let response = http::post(
                &self.url,
                "application/json",
                &self.headers,
                body.as_bytes(),
                left,
            )
            .map_err(|e| OTelSdkError::InternalFailure(format!("POST {}: {e}", self.url)))?;
            if (200..300).contains(&response.status) {
                return Ok(());
            }
            let retryable = matches!(response.status, 429 | 502 | 503 | 504);
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if !retryable || left <= backoff {
                let detail = String::from_utf8_lossy(&response.body);
                let detail: String = detail.chars().take(200).collect();
                return Err(OTelSdkError::InternalFailure(format!(
                    "POST {} answered {}: {}",
                    self.url,
                    response.status,
                    detail.trim()
                )));
            }
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }
}

impl SpanExporter for OtlpHttpJsonExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        self.send(&batch)
    }

    fn set_resource(&mut self, resource: &Resource) {
        let mut attributes: Vec<(&str, Json)> = resource
            .iter()
            .map(|(k, v)| (k.as_str(), any_value(v)))
            .collect();
        // Stable output (the resource is a hash map).
        attributes.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = json!({
            "attributes": attributes
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect::<Vec<_>>(),
        });
        if let Some(schema) = resource.schema_url() {
            out["schemaUrl"] = json!(schema);
        }
        self.resource = out;
    }
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

fn double(f: f64) -> Json {
    if f.is_finite() {
        json!(f)
    } else if f.is_nan() {
        json!("NaN")
    } else if f > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

/// An OTLP JSON `AnyValue` (64-bit integers as strings, per the proto3 JSON mapping).
fn any_value(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::I64(i) => json!({ "intValue": i.to_string() }),
        Value::F64(f) => json!({ "doubleValue": double(*f) }),
        Value::String(s) => json!({ "stringValue": s.as_str() }),
        Value::Array(array) => {
            let values: Vec<Json> = match array {
                Array::Bool(v) => v.iter().map(|b| json!({ "boolValue": b })).collect(),
                Array::I64(v) => v
                    .iter()
                    .map(|i| json!({ "intValue": i.to_string() }))
                    .collect(),
                Array::F64(v) => v
                    .iter()
                    .map(|f| json!({ "doubleValue": double(*f) }))
                    .collect(),
                Array::String(v) => v
                    .iter()
                    .map(|s| json!({ "stringValue": s.as_str() }))
                    .collect(),
                other => vec![json!({ "stringValue": other.to_string() })],
            };
            json!({ "arrayValue": { "values": values } })
        }
        other => json!({ "stringValue": other.to_string() }),
    }
}

fn attributes(kvs: &[KeyValue]) -> Json {
    Json::Array(
        kvs.iter()
            .map(|kv| json!({ "key": kv.key.as_str(), "value": any_value(&kv.value) }))
            .collect(),
    )
}

fn kind(kind: &SpanKind) -> u8 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `SpanFlags`: the W3C trace flags, plus whether the parent is remote (bits 8 and 9).
fn flags(span: &SpanData) -> u32 {
    let remote = if span.parent_span_is_remote {
        0x300
    } else {
        0x100
    };
    u32::from(span.span_context.trace_flags().to_u8()) | remote
}

fn encode_span(span: &SpanData) -> Json {
    let sc = &span.span_context;
    let mut out = Map::new();
    out.insert("traceId".into(), json!(sc.trace_id().to_string()));
    out.insert("spanId".into(), json!(sc.span_id().to_string()));
    let state = sc.trace_state().header();
    if !state.is_empty() {
        out.insert("traceState".into(), json!(state));
    }
    if span.parent_span_id != SpanId::INVALID {
        out.insert(
            "parentSpanId".into(),
            json!(span.parent_span_id.to_string()),
        );
    }
    out.insert("flags".into(), json!(flags(span)));
    out.insert("name".into(), json!(span.name.as_ref()));
    out.insert("kind".into(), json!(kind(&span.span_kind)));
    out.insert("startTimeUnixNano".into(), json!(nanos(span.start_time)));
    out.insert("endTimeUnixNano".into(), json!(nanos(span.end_time)));
    out.insert("attributes".into(), attributes(&span.attributes));
    if span.dropped_attributes_count > 0 {
        out.insert(
            "droppedAttributesCount".into(),
            json!(span.dropped_attributes_count),
        );
    }
    if !span.events.is_empty() {
        let events: Vec<Json> = span
            .events
            .iter()
            .map(|e| {
                json!({
                    "timeUnixNano": nanos(e.timestamp),
                    "name": e.name.as_ref(),
                    "attributes": attributes(&e.attributes),
                    "droppedAttributesCount": e.dropped_attributes_count,
                })
            })
            .collect();
        out.insert("events".into(), Json::Array(events));
    }
    if span.events.dropped_count > 0 {
        out.insert(
            "droppedEventsCount".into(),
            json!(span.events.dropped_count),
        );
    }
    if !span.links.is_empty() {
        let links: Vec<Json> = span
            .links
            .iter()
            .map(|l| {
                json!({
                    "traceId": l.span_context.trace_id().to_string(),
                    "spanId": l.span_context.span_id().to_string(),
                    "traceState": l.span_context.trace_state().header(),
                    "attributes": attributes(&l.attributes),
                    "droppedAttributesCount": l.dropped_attributes_count,
                })
            })
            .collect();
        out.insert("links".into(), Json::Array(links));
    }
    if span.links.dropped_count > 0 {
        out.insert("droppedLinksCount".into(), json!(span.links.dropped_count));
    }
    let status = match &span.status {
        Status::Unset => json!({}),
        Status::Ok => json!({ "code": 1 }),
        Status::Error { description } => json!({ "code": 2, "message": description.as_ref() }),
    };
    out.insert("status".into(), status);
    Json::Object(out)
}

fn encode_scope(scope: &InstrumentationScope) -> Json {
    let mut out = json!({ "name": scope.name() });
    if let Some(version) = scope.version() {
        out["version"] = json!(version);
    }
    let attrs: Vec<KeyValue> = scope.attributes().cloned().collect();
    if !attrs.is_empty() {
        out["attributes"] = attributes(&attrs);
    }
    out
}

/// `ExportTraceServiceRequest` as OTLP JSON: one resource, spans grouped by scope.
fn encode_request(resource: &Json, batch: &[SpanData]) -> Json {
    let mut scopes: Vec<(&InstrumentationScope, Vec<Json>)> = Vec::new();
    for span in batch {
        let scope = &span.instrumentation_scope;
        let i = match scopes.iter().position(|(s, _)| *s == scope) {
            Some(i) => i,
            None => {
                scopes.push((scope, Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[i].1.push(encode_span(span));
    }
    let scope_spans: Vec<Json> = scopes
        .into_iter()
        .map(|(scope, spans)| {
            let mut out = json!({ "scope": encode_scope(scope), "spans": spans });
            if let Some(schema) = scope.schema_url() {
                out["schemaUrl"] = json!(schema);
            }
            out
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": resource,
            "scopeSpans": scope_spans,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn endpoint_and_headers_from_the_environment() {
        let env = |vars: &[(&str, &str)]| {
            let vars: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            move |name: &str| vars.get(name).cloned()
        };
        let e = OtlpHttpJsonExporter::from_lookup(env(&[])).unwrap();
        assert_eq!(e.endpoint(), DEFAULT_ENDPOINT);
        assert_eq!(e.timeout, DEFAULT_TIMEOUT);

        let e = OtlpHttpJsonExporter::from_lookup(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=se%3Dcret,x-tenant=a"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Tenant=b"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]))
        .unwrap();
        assert_eq!(e.endpoint(), "http://collector:4318/v1/traces");
        assert_eq!(
            e.headers,
            [
                ("api-key".to_owned(), "se=cret".to_owned()),
                ("x-tenant".to_owned(), "b".to_owned())
            ]
        );
        assert_eq!(e.timeout, Duration::from_millis(2500));
        let debug = format!("{e:?}");
        assert!(
            debug.contains("api-key") && !debug.contains("se=cret"),
            "{debug}"
        );

        let e = OtlpHttpJsonExporter::from_lookup(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://other:9/custom",
            ),
        ]))
        .unwrap();
        assert_eq!(e.endpoint(), "http://other:9/custom");

        for bad in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=secretvalue"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ] {
            let err = OtlpHttpJsonExporter::from_lookup(env(&[bad]))
                .unwrap_err()
                .to_string();
            assert!(!err.contains("secretvalue"), "{err}");
        }
    }

    #[test]
    fn values_follow_the_proto3_json_mapping() {
        assert_eq!(any_value(&Value::I64(-7)), json!({"intValue": "-7"}));
        assert_eq!(
            any_value(&Value::F64(f64::NAN)),
            json!({"doubleValue": "NaN"})
        );
        assert_eq!(
            any_value(&Value::Array(Array::Bool(vec![true]))),
            json!({"arrayValue": {"values": [{"boolValue": true}]}})
        );
        assert_eq!(any_value(&"x".into()), json!({"stringValue": "x"}));
    }
}
