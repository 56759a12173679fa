//! Interop suite harness: a RustStream service generated from an AsyncAPI document, and a
//! [FastStream](https://faststream.ag2.ai) peer (Python, pinned by `scripts/faststream-venv.sh`)
//! on the same real broker.
//!
//! A test per broker lives in `tests/<broker>.rs`; its FastStream app in
//! `python/<broker>_peer.py`. This module is what they share:
//!
//! - **Where the peer is**: [`venv_dir`] (`$FASTSTREAM_VENV`, else
//!   `<workspace>/target/faststream-venv`), [`venv_python`], [`python_dir`].
//! - **Skip rules**: [`require_peer`] takes the services a test needs (`("nats",
//!   "127.0.0.1:4222")`); when the venv or a server is missing it prints why and returns `None`
//!   (the test returns early), and under `CI=true` it panics instead (a CI run never silently
//!   skips), like [`ruststream::testing::require_service`].
//! - **The peer process**: [`Peer::start`] spawns `python -u python/<script> <args>` from the
//!   venv, waits for its readiness line, and kills it on drop. [`Peer::call`] sends it a
//!   command and waits for the result; [`Peer::wait_for`] waits for an event it reports.
//!
//! # The peer protocol (JSON lines)
//!
//! The peer prints one JSON object per line on **stdout** (anything else there is ignored, and
//! FastStream's logs go to stderr, which the harness keeps for failure messages):
//!
//! - `{"event": "ready"}` once its broker is connected and its subscribers are active;
//! - `{"event": "<anything>", …}` for what it observes, typically `"received"` with the
//!   fields of `python/peer.py`'s `describe(msg)` — `body` (JSON-decoded when it is JSON, else
//!   text), `headers`, `correlation_id`, `reply_to`, `content_type` — and the script's own
//!   (the scenario scripts add `channel`);
//! - `{"event": "result", "id": N, …}` or `{"event": "error", "id": N, "error": "…"}` for the
//!   command with that id.
//!
//! It reads commands as JSON lines on **stdin**: `{"id": N, "op": "<name>", …}`; which ops
//! exist is up to the script (`python/peer.py` provides the loop, `publish` and `request`
//! are the usual ones). [`Peer::call`] numbers the commands itself.
//!
//! ```no_run
//! use std::time::Duration;
//! use ruststream_interop::{Peer, require_peer};
//! use serde_json::json;
//!
//! # async fn t() {
//! let Some(python) = require_peer(&[("nats", "127.0.0.1:4222")]) else { return };
//! let mut peer = Peer::start(&python, "nats_peer.py", &["--prefix", "t1"]).await;
//! let done = peer.call(json!({"op": "publish", "subject": "t1.in", "body": {"n": 1}})).await;
//! let seen = peer
//!     .wait_for("the echo", Duration::from_secs(5), |e| e["event"] == "received")
//!     .await;
//! # let _ = (done, seen);
//! # }
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

pub mod scenario;

/// Code generated from `specs/*.yaml` by `build.rs` (one module per document).
pub mod spec {
    /// Generated from `specs/interop.yaml`: the document both stacks implement.
    #[allow(dead_code)]
    pub mod interop {
        ruststream::include_spec!("interop");
    }
    /// Generated from `data/pricing-nats.asyncapi.json`: the document FastStream 0.7.8 exports
    /// for `python/pricing_app.py --broker nats`.
    #[allow(dead_code)]
    pub mod pricing_nats {
        ruststream::include_spec!("pricing_nats");
    }
    /// Generated from `data/pricing-redis.asyncapi.json`: the document FastStream 0.7.8
    /// exports for `python/pricing_app.py --broker redis` (Pub/Sub channels).
    #[allow(dead_code)]
    pub mod pricing_redis {
        ruststream::include_spec!("pricing_redis");
    }
}

/// How long [`Peer::start`] waits for the readiness line (the Python interpreter and
/// FastStream import in well under this on an idle machine; CI machines are busy).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Peer::call`] waits for a command's result.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The FastStream virtual environment: `$FASTSTREAM_VENV`, else
/// `<workspace>/target/faststream-venv` (what `scripts/faststream-venv.sh` creates).
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("FASTSTREAM_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target/faststream-venv"),
    }
}

/// The venv's Python interpreter, when it exists.
pub fn venv_python() -> Option<PathBuf> {
    let python = venv_dir().join("bin/python");
    python.is_file().then_some(python)
}

/// The folder of the peer scripts (`tests/interop/python`).
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// Whether this is a CI run (`CI=true` or `CI=1`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The venv's Python when it and every service in `services` (`(name, "host:port")`) are
/// there; otherwise prints why to stderr and returns `None` (the test returns early). Under
/// `CI=true` a missing venv or service panics instead.
pub fn require_peer(services: &[(&str, &str)]) -> Option<PathBuf> {
    let Some(python) = venv_python() else {
        let msg = format!(
            "the FastStream venv is missing at {} (run scripts/faststream-venv.sh)",
            venv_dir().display()
        );
        if in_ci() {
            panic!("{msg}: CI requires it");
        }
        eprintln!("skipping: {msg}");
        return None;
    };
    for (name, addr) in services {
        if !ruststream::testing::require_service(name, addr) {
            return None;
        }
    }
    Some(python)
}

/// A unique name part for one test run (so runs against a shared live server, and tests run
/// in parallel, never see each other's messages): letters and digits only.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}{}x{nanos:x}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running FastStream peer process (killed on drop).
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    /// Events read but not yet matched by a wait.
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// Spawn `python -u <python_dir>/<script> <args…>` and wait (up to [`READY_TIMEOUT`]) for
    /// its `{"event": "ready"}` line.
    ///
    /// # Panics
    /// When the process cannot be spawned, exits, or is not ready in time; the message
    /// carries the peer's stderr.
    pub async fn start(python: &Path, script: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(python_dir().join(script))
            .args(args)
            .current_dir(python_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {} {script}: {e}", python.display()));
        let (tx, lines) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let keep = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    let mut text = keep.lock().unwrap_or_else(|p| p.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                    // Keep the tail only.
                    if text.len() > 64 * 1024 {
                        let cut = text.len() - 32 * 1024;
                        let cut = (cut..text.len())
                            .find(|i| text.is_char_boundary(*i))
                            .unwrap_or(0);
                        text.drain(..cut);
                    }
                }
            });
        }
        let mut peer = Peer {
            name: script.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            backlog: VecDeque::new(),
            stderr,
            next_id: 0,
        };
        peer.wait_for("readiness", READY_TIMEOUT, |e| e["event"] == "ready")
            .await;
        peer
    }

    /// What the peer wrote to stderr so far (its tail).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fail(&mut self, what: &str) -> ! {
        // Give a dying process, and the stderr reader, a moment to finish.
        std::thread::sleep(Duration::from_millis(200));
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("exited with {s}"),
            _ => "still running".to_owned(),
        };
        panic!(
            "peer {}: {what} ({status}); unmatched events: {:?}\n--- peer stderr ---\n{}",
            self.name,
            self.backlog,
            self.stderr()
        );
    }

    /// Wait up to `timeout` for the first event (already read or still to come) for which
    /// `matches` is true, and take it; other events stay for later waits.
    ///
    /// # Panics
    /// On timeout or when the peer exits first (`what` names the awaited event).
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(i) = self.backlog.iter().position(&matches) {
            return self.backlog.remove(i).unwrap_or_default();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => self.fail(&format!("stdout closed while waiting for {what}")),
                Err(_) => self.fail(&format!("no {what} within {timeout:?}")),
            };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue; // not a protocol line
            };
            if !event.is_object() {
                continue;
            }
            if matches(&event) {
                return event;
            }
            self.backlog.push_back(event);
        }
    }

    /// Whether no event matching `matches` arrives within `quiet` (events read meanwhile are
    /// kept for later waits).
    pub async fn none_within(&mut self, quiet: Duration, matches: impl Fn(&Value) -> bool) -> bool {
        if self.backlog.iter().any(&matches) {
            return false;
        }
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                let hit = matches(&event);
                self.backlog.push_back(event);
                if hit {
                    return false;
                }
            }
        }
        true
    }

    /// Send `command` (a JSON object; an `"id"` is added) on the peer's stdin and wait up to
    /// [`CALL_TIMEOUT`] for its `result`, which is returned.
    ///
    /// # Panics
    /// When the peer reports an `error` for it, exits, or does not answer in time.
    pub async fn call(&mut self, mut command: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = Value::from(id);
        let mut line = command.to_string();
        line.push('\n');
        let written = self
            .stdin
            .as_mut()
            .map(|s| s.write_all(line.as_bytes()).and_then(|()| s.flush()));
        if !matches!(written, Some(Ok(()))) {
            self.fail(&format!("cannot write command {command}"));
        }
        let event = self
            .wait_for(&format!("result of {command}"), CALL_TIMEOUT, |e| {
                e["id"] == id && (e["event"] == "result" || e["event"] == "error")
            })
            .await;
        if event["event"] == "error" {
            self.fail(&format!("command {command} failed: {}", event["error"]));
        }
        event
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
