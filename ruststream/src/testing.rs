//! Helpers for tests of RustStream services and broker crates.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Whether a test that needs the service at `addr` (e.g. `"127.0.0.1:4222"`) can run.
///
/// Returns `true` when a TCP connection succeeds. When it fails: with `CI=true` in the
/// environment this panics (a CI run must not silently skip), otherwise it prints the reason to
/// stderr and returns `false` so the caller can return early.
///
/// This is a blocking check with a short timeout, meant for the start of a test.
pub fn require_service(name: &str, addr: &str) -> bool {
    let reachable = addr
        .parse::<SocketAddr>()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if reachable {
        return true;
    }
    let msg = format!("{name} is not reachable at {addr}");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg}: CI requires it (start it as .ci/run does)");
    }
    eprintln!("skipping: {msg}");
    false
}
