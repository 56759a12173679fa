//! The pipelined writer: one background task drains a queue of commands into pipelines.
//!
//! Callers enqueue synchronously (so call order is wire order) and await their own reply.
//! While one pipeline is in flight the next one fills up, so many concurrent publishers cost
//! one round trip per batch, not one per message.

use redis::aio::ConnectionManager;
use redis::{Cmd, Value};
use tokio::sync::{mpsc, oneshot};

/// The reply of one queued command: the value or the (scrubbed) error text.
pub(crate) type Reply = Result<Value, String>;

enum Job {
    Cmd(Cmd, Option<oneshot::Sender<Reply>>),
    /// Commands that must stay contiguous on the wire (e.g. `MULTI … EXEC`); the reply is the
    /// last command's.
    Group(Vec<Cmd>, oneshot::Sender<Reply>),
    Flush(oneshot::Sender<()>),
}

enum Waiter {
    One(Option<oneshot::Sender<Reply>>),
    /// Skip `n` replies, then answer with the next one.
    Last(usize, oneshot::Sender<Reply>),
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Start the writer task on `conn`.
    pub(crate) fn spawn(
        conn: ConnectionManager,
        max_pipeline: usize,
        scrub: crate::Scrubber,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx, max_pipeline, scrub));
        Writer { tx }
    }

    /// Queue `cmd` now; the returned receiver yields its reply.
    pub(crate) fn send(&self, cmd: Cmd) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        // When the writer is gone the sender is dropped and the receiver reports it.
        let _ = self.tx.send(Job::Cmd(cmd, Some(tx)));
        rx
    }

    /// Queue `cmds` contiguously; the receiver yields the last command's reply (or the first
    /// error among them).
    pub(crate) fn send_group(&self, cmds: Vec<Cmd>) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Group(cmds, tx));
        rx
    }

    /// Queue `cmd` without waiting for its reply.
    pub(crate) fn send_detached(&self, cmd: Cmd) {
        let _ = self.tx.send(Job::Cmd(cmd, None));
    }

    /// Queue a flush marker: it resolves once every command queued before it has its reply.
    pub(crate) fn flush(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Flush(tx));
        rx
    }
}

/// Await a reply from [`Writer::send`] as a runtime result.
pub(crate) async fn reply(rx: oneshot::Receiver<Reply>) -> ruststream::Result<Value> {
    match rx.await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ruststream::Error::transport("redis", e)),
        Err(_) => Err(ruststream::Error::Closed),
    }
}

async fn run(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Job>,
    max_pipeline: usize,
    scrub: crate::Scrubber,
) {
    let mut jobs = Vec::with_capacity(max_pipeline);
    let mut waiters = Vec::with_capacity(max_pipeline);
    let mut flushes = Vec::new();
    loop {
        if rx.recv_many(&mut jobs, max_pipeline).await == 0 {
            break;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for job in jobs.drain(..) {
            match job {
                Job::Cmd(cmd, waiter) => {
                    pipe.add_command(cmd);
                    waiters.push(Waiter::One(waiter));
                }
                Job::Group(cmds, waiter) => {
                    let n = cmds.len();
                    for cmd in cmds {
                        pipe.add_command(cmd);
                    }
                    waiters.push(Waiter::Last(n.saturating_sub(1), waiter));
                }
                Job::Flush(done) => flushes.push(done),
            }
        }
        if !waiters.is_empty() {
            let result: redis::RedisResult<Vec<redis::RedisResult<Value>>> =
                pipe.query_async(&mut conn).await;
            match result {
                Ok(replies) => {
                    let mut replies = replies.into_iter().map(|r| match r {
                        Ok(v) => v.extract_error().map_err(|e| scrub.scrub(e)),
                        Err(e) => Err(scrub.scrub(e)),
                    });
                    let mut next = || {
                        replies.next().unwrap_or_else(|| {
                            Err("pipeline returned fewer replies than commands".to_owned())
                        })
                    };
                    for waiter in waiters.drain(..) {
                        match waiter {
                            Waiter::One(w) => {
                                let reply = next();
                                if let Some(w) = w {
                                    let _ = w.send(reply);
                                } else if let Err(e) = reply {
                                    tracing::warn!(error = %e, "redis: detached command failed");
                                }
                            }
                            Waiter::Last(skip, w) => {
                                let mut first_error = None;
                                for _ in 0..skip {
                                    if let Err(e) = next() {
                                        first_error.get_or_insert(e);
                                    }
                                }
                                let last = next();
                                let _ = w.send(match first_error {
                                    Some(e) => Err(e),
                                    None => last,
                                });
                            }
                        }
                    }
                }
                Err(e) => {
                    let msg = scrub.scrub(e);
                    tracing::debug!(error = %msg, "redis: pipeline failed");
                    for waiter in waiters.drain(..) {
                        match waiter {
                            Waiter::One(Some(w)) | Waiter::Last(_, w) => {
                                let _ = w.send(Err(msg.clone()));
                            }
                            Waiter::One(None) => {}
                        }
                    }
                }
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
