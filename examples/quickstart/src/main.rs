//! Quickstart: the smallest useful spec-first RustStream service.
//!
//! `asyncapi.yaml` describes a greeter: it receives greeting requests on `greet/{name}` and
//! publishes greetings on `greetings`. `build.rs` turns the document into Rust (types, a
//! `Handler` trait, `register`, a typed `Publisher` and `Client`); this file implements the
//! trait and builds the app on the in-memory broker.
//!
//! - `cargo run -p quickstart` — start the service, send a few requests with the generated
//!   client, print what happened, exit;
//! - `cargo run -p quickstart -- run` — serve until Ctrl-C;
//! - `cargo run -p quickstart -- asyncapi gen` — print the AsyncAPI document.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::app::App;
use ruststream::memory::{MemoryBroker, MemoryConnection};
use ruststream::router::{Context, HandlerError};
use ruststream::{Connection, Error, SubscribeOptions};

/// The code generated from `asyncapi.yaml`.
mod spec {
    ruststream::include_spec!("quickstart");
}

use spec::{
    GreetRequestPayload, GreetRequestPayloadLanguage as Language, GreetRequestsParams,
    GreetingPayload,
};

/// The service: implements the operations the spec says it receives.
struct Greeter;

impl spec::Handler for Greeter {
    async fn on_greet<C: Connection>(
        &self,
        message: GreetRequestPayload,
        params: GreetRequestsParams,
        ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        let name = params.name;
        let text = match message.language {
            Language::En => format!("Hello, {name}!"),
            Language::Fr => format!("Bonjour, {name} !"),
            Language::De => format!("Hallo, {name}!"),
        };
        println!("handler: greeting {name} in {:?}", message.language);
        spec::Publisher::from_context(&ctx)
            .send_greeting(&GreetingPayload { name, text })
            .await?;
        Ok(())
    }
}

/// With no command: talk to the running service through the generated client.
async fn demo(conn: MemoryConnection) -> ruststream::Result<()> {
    let client = spec::Client::new(conn);
    let mut greetings = client
        .subscribe_send_greeting(SubscribeOptions::new())
        .await?;
    let people = [
        ("Ada", Language::En),
        ("Amelie", Language::Fr),
        ("Grete", Language::De),
    ];
    for (name, language) in people {
        println!("client: asking the service to greet {name} ({language:?})");
        let params = GreetRequestsParams {
            name: name.to_owned(),
        };
        client
            .on_greet(&params, &GreetRequestPayload { language })
            .await?;
    }
    for _ in people {
        let next = tokio::time::timeout(Duration::from_secs(5), greetings.next()).await;
        let greeting = match next {
            Ok(Some(item)) => item?.ack().await?,
            Ok(None) => return Err(Error::Closed),
            Err(_) => return Err(Error::Timeout("waiting for a greeting".into())),
        };
        println!("client: got \"{}\" for {}", greeting.text, greeting.name);
    }
    println!("done: {} greetings", people.len());
    Ok(())
}

#[ruststream::app]
async fn build() -> ruststream::Result<App<MemoryBroker>> {
    App::new(MemoryBroker::default())
        .name("quickstart")
        .version(env!("CARGO_PKG_VERSION"))
        .spec(spec::ASYNCAPI_JSON)
        .demo(demo)
        .with_router(|router| spec::register(router, Greeter))
}
