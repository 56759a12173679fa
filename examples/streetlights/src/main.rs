//! Streetlights: the classic AsyncAPI example as a RustStream service.
//!
//! The service receives light measurements on
//! `smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured` and commands the
//! light: below 100 lumens it turns it on, below 1000 it dims it, otherwise it turns it off.
//! It also has one hand-written route (`…/event/{streetlightId}/heartbeat`) that is not in the
//! spec, to show that such routes appear in the emitted document too.
//!
//! This `main` is written by hand and calls [`ruststream::app::run_cli`] (the quickstart uses
//! `#[ruststream::app]` instead) to pick the broker from the environment: the in-memory broker
//! by default, MQTT with `STREETLIGHTS_BROKER=mqtt` and `STREETLIGHTS_SERVER_URL=mqtt://…`,
//! NATS with `STREETLIGHTS_BROKER=nats` and `STREETLIGHTS_SERVER_URL=nats://…` (the spec's `/`
//! addresses travel as `.` subjects: `smartylighting.streetlights.1.0.event.42.lighting.measured`).
//! Run with no command for a demo, `run` to serve, `asyncapi gen` for the document.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::app::{App, RouteDoc, ServerDoc};
use std::process::ExitCode;

use ruststream::app::run_cli;
use ruststream::memory::MemoryBroker;
use ruststream::router::{Context, HandlerError, Route};
use ruststream::{Broker, Connection, Error, IncomingMessage, SubscribeOptions};
use ruststream_mqtt::Mqtt;
use ruststream_nats::NatsBroker;

/// The code generated from `asyncapi.yaml` (a binary uses only part of its API).
#[allow(dead_code)]
mod spec {
    ruststream::include_spec!("streetlights");
}

use spec::{
    DimLightHeaders, DimLightPayload, LightMeasuredHeaders, LightMeasuredPayload,
    LightTurnOffParams, LightTurnOnParams, LightingMeasuredParams, LightsDimParams,
    TurnOnOffHeaders, TurnOnOffPayload, TurnOnOffPayloadCommand as Command,
};

/// Below this many lumens the light is turned on.
const DARK: i64 = 100;
/// Below this many lumens (and at least [`DARK`]) the light is dimmed.
const DIM: i64 = 1000;

/// The service.
struct Streetlights;

impl spec::Handler for Streetlights {
    async fn receive_light_measurement<C: Connection>(
        &self,
        message: LightMeasuredPayload,
        _headers: LightMeasuredHeaders,
        params: LightingMeasuredParams,
        ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        let id = params.streetlight_id;
        let lumens = message
            .lumens
            .ok_or_else(|| HandlerError::permanent("measurement without lumens"))?;
        // Through the context: the commands go through the router's middleware (metrics) and
        // carry the measurement's correlation id and trace context (a child span).
        let publisher = spec::Publisher::from_context(&ctx);
        let sent_at = message.sent_at;
        if lumens < DARK {
            println!("service: light {id} measured {lumens} lm -> turn on");
            let on = TurnOnOffPayload {
                command: Some(Command::On),
                sent_at,
            };
            let params = LightTurnOnParams { streetlight_id: id };
            publisher
                .turn_on(&params, &on, &TurnOnOffHeaders::default())
                .await?;
        } else if lumens < DIM {
            let percentage = (lumens * 100 / DIM).clamp(0, 100);
            println!("service: light {id} measured {lumens} lm -> dim to {percentage}%");
            let dim = DimLightPayload {
                percentage: Some(percentage),
                sent_at,
            };
            let params = LightsDimParams { streetlight_id: id };
            publisher
                .dim_light(&params, &dim, &DimLightHeaders::default())
                .await?;
        } else {
            println!("service: light {id} measured {lumens} lm -> turn off");
            let off = TurnOnOffPayload {
                command: Some(Command::Off),
                sent_at,
            };
            let params = LightTurnOffParams { streetlight_id: id };
            publisher
                .turn_off(&params, &off, &TurnOnOffHeaders::default())
                .await?;
        }
        Ok(())
    }
}

/// Wait for the next decoded item of a subscription, ack it, return it with its address.
async fn next<T, M, S>(stream: &mut S) -> ruststream::Result<(T, String)>
where
    M: IncomingMessage,
    S: futures_util::Stream<Item = ruststream::Result<ruststream::client::Typed<T, M>>> + Unpin,
{
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(item)) => {
            let (value, message) = item?.into_parts();
            let address = message.address().to_owned();
            message.ack().await?;
            Ok((value, address))
        }
        Ok(None) => Err(Error::Closed),
        Err(_) => Err(Error::Timeout("waiting for a command".into())),
    }
}

/// With no command: play the street lights with the generated client.
async fn demo<C: Connection>(conn: C) -> ruststream::Result<()> {
    let client = spec::Client::new(conn);
    let mut turned_on = client.subscribe_turn_on(SubscribeOptions::new()).await?;
    let mut turned_off = client.subscribe_turn_off(SubscribeOptions::new()).await?;
    let mut dimmed = client.subscribe_dim_light(SubscribeOptions::new()).await?;
    for (id, lumens) in [("1", 42), ("2", 500), ("3", 5000)] {
        println!("light {id}: measured {lumens} lm");
        let params = LightingMeasuredParams {
            streetlight_id: id.to_owned(),
        };
        let measurement = LightMeasuredPayload {
            lumens: Some(lumens),
            sent_at: Some("2026-01-01T18:00:00Z".to_owned()),
        };
        client
            .receive_light_measurement(&params, &measurement, &LightMeasuredHeaders::default())
            .await?;
    }
    let (on, address) = next(&mut turned_on).await?;
    let id = LightTurnOnParams::parse(&address).map(|p| p.streetlight_id);
    println!(
        "light {}: got command {:?}",
        id.unwrap_or_default(),
        on.command
    );
    let (dim, address) = next(&mut dimmed).await?;
    let id = LightsDimParams::parse(&address).map(|p| p.streetlight_id);
    println!(
        "light {}: dimmed to {}%",
        id.unwrap_or_default(),
        dim.percentage.unwrap_or_default()
    );
    let (off, address) = next(&mut turned_off).await?;
    let id = LightTurnOffParams::parse(&address).map(|p| p.streetlight_id);
    println!(
        "light {}: got command {:?}",
        id.unwrap_or_default(),
        off.command
    );
    Ok(())
}

/// Build the app on `broker`: generated service, one hand-written route, the embedded spec,
/// and `server` (if any) in the document — without its credentials.
fn build<B: Broker>(broker: B, server: Option<&str>) -> ruststream::Result<App<B>> {
    let mut app = App::new(broker);
    if let Some(url) = server {
        app = app.server(ServerDoc::new("production", url).description("Where the lights live."));
    }
    app.name("streetlights")
        .version(env!("CARGO_PKG_VERSION"))
        .spec(spec::ASYNCAPI_JSON)
        .demo(demo)
        .route(
            Route::new("smartylighting/streetlights/1/0/event/{streetlightId}/heartbeat")?
                .name("receiveHeartbeat"),
            |_: serde_json::Value, ctx: Context<B::Connection>| async move {
                tracing::debug!(light = ctx.param("streetlightId"), "heartbeat");
                Ok::<_, HandlerError>(())
            },
        )
        .document_route(
            RouteDoc::receive(
                "receiveHeartbeat",
                "smartylighting/streetlights/1/0/event/{streetlightId}/heartbeat",
            )
            .payload(serde_json::json!({"type": "object"}))
            .description("A light says it is alive (hand-written route)."),
        )
        .with_router(|router| spec::register(router, Streetlights))
}

/// MQTT settings from a `mqtt://[user:password@]host[:port]` URL.
fn mqtt_config(url: &str) -> Result<ruststream_mqtt::Config, String> {
    let rest = url
        .strip_prefix("mqtt://")
        .ok_or("STREETLIGHTS_SERVER_URL must start with mqtt://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port `{p}`"))?),
        None => (host_port, 1883),
    };
    let mut config = ruststream_mqtt::Config::new(host, port);
    if let Some(c) = credentials {
        let (user, password) = c.split_once(':').unwrap_or((c, ""));
        config = config.credentials(user, password);
    }
    Ok(config)
}

/// NATS settings from a `nats://[user:password@]host[:port]` URL (several separated by `,`).
/// The spec's addresses use `/`, which becomes NATS's `.` on the wire.
fn nats_config(url: &str) -> Result<ruststream_nats::Config, String> {
    let servers: Vec<&str> = url.split(',').map(str::trim).collect();
    if servers
        .iter()
        .any(|s| !(s.starts_with("nats://") || s.starts_with("tls://")))
    {
        return Err("STREETLIGHTS_SERVER_URL must start with nats:// (or tls://)".to_owned());
    }
    Ok(ruststream_nats::Config::default()
        .servers(servers)
        .client_name("streetlights")
        .address_separator('/'))
}

/// `STREETLIGHTS_BROKER` picks the broker: `memory` (default), `mqtt` (at
/// `STREETLIGHTS_SERVER_URL`, default `mqtt://127.0.0.1:1883`) or `nats` (default
/// `nats://127.0.0.1:4222`).
fn main() -> ExitCode {
    let server = std::env::var("STREETLIGHTS_SERVER_URL").ok();
    match std::env::var("STREETLIGHTS_BROKER").as_deref() {
        Err(_) | Ok("memory") => {
            run_cli(|| async { build(MemoryBroker::default(), server.as_deref()) })
        }
        Ok("mqtt") => {
            let url = server.unwrap_or_else(|| "mqtt://127.0.0.1:1883".to_owned());
            match mqtt_config(&url) {
                Ok(config) => run_cli(|| async { build(Mqtt::new(config), Some(&url)) }),
                Err(e) => {
                    eprintln!("streetlights: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Ok("nats") => {
            let url = server.unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
            match nats_config(&url) {
                Ok(config) => run_cli(|| async { build(NatsBroker::new(config), Some(&url)) }),
                Err(e) => {
                    eprintln!("streetlights: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Ok(other) => {
            eprintln!("streetlights: unknown STREETLIGHTS_BROKER `{other}` (memory, mqtt or nats)");
            ExitCode::from(2)
        }
    }
}
