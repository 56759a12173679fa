//! Streetlights: the classic AsyncAPI example as a RustStream service.
//!
//! The service receives light measurements on
//! `smartylighting/streetlights/1/0/event/{streetlightId}/lighting/measured` and commands the
//! light: below 100 lumens it turns it on, below 1000 it dims it, otherwise it turns it off.
//! It also has one hand-written route (`…/event/{streetlightId}/heartbeat`) that is not in the
//! spec, to show that such routes appear in the emitted document too.
//!
//! This `main` is written by hand and calls [`ruststream::app::run_cli`] (the quickstart uses
//! `#[ruststream::app]` instead) to pick the broker from the command line: the in-memory broker
//! by default; `--server production` (the spec's server, `RUSTSTREAM_SERVER`) or
//! `--broker-url mqtt://…` (`RUSTSTREAM_BROKER_URL`) for MQTT; `--broker-url nats://…` for NATS
//! and `--broker-url kafka://…` for Kafka (the spec's `/` addresses travel as `.` subjects and
//! topics: `smartylighting.streetlights.1.0.event.42.lighting.measured`, the naming of the
//! official streetlights-kafka document).
//! Run with no command for a demo, `run` to serve, `asyncapi gen` for the document.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::app::{App, ChosenServer, RouteDoc, ServerDoc, chosen_server, run_cli};
use std::process::ExitCode;

use ruststream::memory::MemoryBroker;
use ruststream::router::{Context, HandlerError, Route};
use ruststream::{Broker, Connection, Error, IncomingMessage, SubscribeOptions};
use ruststream_kafka::KafkaBroker;
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
/// and the chosen server (if any) in the document, as the spec's `production` unless the
/// command line named another — without its credentials.
fn build<B: Broker>(broker: B, server: Option<&ChosenServer>) -> ruststream::Result<App<B>> {
    let mut app = App::new(broker);
    if let Some(server) = server {
        let name = server.name.as_deref().unwrap_or("production");
        app = app.server(ServerDoc::new(name, &server.url).description("Where the lights live."));
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

/// The broker comes from the command line: `--server production` (`RUSTSTREAM_SERVER`, the
/// spec's server) or `--broker-url mqtt://…|nats://…|kafka://…` (`RUSTSTREAM_BROKER_URL`) picks
/// MQTT, NATS or Kafka by the URL's scheme, its broker crate's `Config::from_url` reads the rest; neither:
/// the in-memory broker.
fn main() -> ExitCode {
    let server = match chosen_server(spec::SERVERS) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("streetlights: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(server) = server else {
        return run_cli(|| async { build(MemoryBroker::default(), None) });
    };
    match server.scheme().as_str() {
        "mqtt" => run_cli(|| async {
            let config = ruststream_mqtt::Config::from_url(&server.url)?;
            build(Mqtt::new(config), Some(&server))
        }),
        // The spec's `/` addresses travel as NATS's `.` subjects.
        "nats" => run_cli(|| async {
            let config = ruststream_nats::Config::from_url(&server.url)?
                .client_name("streetlights")
                .address_separator('/');
            build(NatsBroker::new(config), Some(&server))
        }),
        // The same on Kafka: `.` topics, as the official streetlights-kafka document names them.
        "kafka" | "kafka-secure" => run_cli(|| async {
            let config = ruststream_kafka::Config::from_url(&server.url)?
                .client_id("streetlights")
                .address_separator('/');
            build(KafkaBroker::new(config), Some(&server))
        }),
        other => {
            eprintln!("streetlights: no broker for `{other}` URLs (mqtt://, nats:// or kafka://)");
            ExitCode::from(2)
        }
    }
}
