//! Request/reply: a typed currency converter and its generated client.
//!
//! `asyncapi.yaml` declares a `convert` operation with a `reply`; `build.rs` generates a
//! `Handler::convert` that returns the typed reply, and a `Client::convert` that sends the
//! request and awaits that reply (correlated by id, on a private reply address).
//!
//! Run with no command for a demo, `run` to serve, `asyncapi gen` for the document.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ruststream::Connection;
use ruststream::app::App;
use ruststream::memory::{MemoryBroker, MemoryConnection};
use ruststream::router::{Context, HandlerError};

/// The code generated from `asyncapi.yaml` (a binary uses only part of its API).
#[allow(dead_code)]
mod spec {
    ruststream::include_spec!("converter");
}

use spec::{ConversionRequestPayload, ConversionResultPayload, Converted, Currency, Refused};

/// The service; its state (the rate table) is shared by every request it handles.
struct Converter {
    /// Units of each currency per euro.
    per_euro: Arc<HashMap<Currency, f64>>,
}

impl spec::Handler for Converter {
    async fn convert<C: Connection>(
        &self,
        request: ConversionRequestPayload,
        ctx: Context<C>,
    ) -> Result<ConversionResultPayload, HandlerError> {
        println!(
            "service: request {} converts {} {:?} to {:?}",
            ctx.correlation_id().unwrap_or("-"),
            request.amount,
            request.from,
            request.to
        );
        if !(request.amount.is_finite() && request.amount > 0.0) {
            return Ok(ConversionResultPayload::Refused(Refused {
                reason: format!("amount must be positive, got {}", request.amount),
            }));
        }
        let (Some(from), Some(to)) = (
            self.per_euro.get(&request.from),
            self.per_euro.get(&request.to),
        ) else {
            return Ok(ConversionResultPayload::Refused(Refused {
                reason: "no rate for that pair".to_owned(),
            }));
        };
        let rate = to / from;
        Ok(ConversionResultPayload::Converted(Converted {
            amount: request.amount * rate,
            rate,
        }))
    }
}

/// With no command: send a few typed requests and print the typed replies.
async fn demo(conn: MemoryConnection) -> ruststream::Result<()> {
    let client = spec::Client::new(conn);
    let requests = [
        (100.0, Currency::Eur, Currency::Usd),
        (3200.0, Currency::Jpy, Currency::Eur),
        (-5.0, Currency::Gbp, Currency::Usd),
    ];
    for (amount, from, to) in requests {
        let request = ConversionRequestPayload { amount, from, to };
        match client.convert(&request, Duration::from_secs(5)).await? {
            ConversionResultPayload::Converted(c) => println!(
                "client: {amount} {from:?} = {:.2} {to:?} (rate {:.6})",
                c.amount, c.rate
            ),
            ConversionResultPayload::Refused(r) => {
                println!("client: {amount} {from:?} -> {to:?} refused: {}", r.reason)
            }
        }
    }
    Ok(())
}

#[ruststream::app]
async fn build() -> ruststream::Result<App<MemoryBroker>> {
    let per_euro = Arc::new(HashMap::from([
        (Currency::Eur, 1.0),
        (Currency::Usd, 1.08),
        (Currency::Gbp, 0.85),
        (Currency::Jpy, 160.0),
    ]));
    App::new(MemoryBroker::default())
        .name("converter")
        .version(env!("CARGO_PKG_VERSION"))
        .spec(spec::ASYNCAPI_JSON)
        .demo(demo)
        .with_router(|router| spec::register(router, Converter { per_euro }))
}
