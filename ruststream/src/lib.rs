//! RustStream: spec-first async messaging.
//!
//! This crate holds the broker contract every broker crate implements ([`broker`]),
//! channel address templates ([`address`]), headers and messages ([`message`]) and the
//! optional capability traits ([`capability`]). It depends on no broker.
//!
//! The runtime on top: payload codecs chosen by content type ([`codec`]), the embedded
//! in-memory broker ([`memory`]), the [`router`] that runs typed handlers with retries, dead
//! letters, middleware and graceful shutdown, typed publish/request/subscribe helpers for
//! generated clients ([`client`]) and test helpers ([`testing`]).

pub mod address;
pub mod broker;
pub mod capability;
pub mod client;
pub mod codec;
pub mod error;
pub mod memory;
pub mod message;
pub mod router;

pub use address::{Address, AddressError, Params};
pub use broker::{Broker, Capabilities, Connection, Publisher, SubscribeOptions, Subscriber};
pub use error::{Error, Result};
pub use message::{Headers, IncomingMessage, OutgoingMessage};
pub mod testing;

#[cfg(feature = "conformance")]
pub mod conformance;

#[cfg(feature = "metrics")]
pub mod metrics;
pub mod telemetry;

#[cfg(feature = "app")]
pub mod app;
/// `#[ruststream::app]`: turn `async fn build() -> App<…>` into the program's `main`
/// (see [`app::run_cli`]).
#[cfg(feature = "app")]
pub use ruststream_macros::app;

/// Include the code `ruststream-build` generated for the spec named `$name` (from `OUT_DIR`).
///
/// ```ignore
/// ruststream::include_spec!("streetlights");
/// ```
#[macro_export]
macro_rules! include_spec {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}
