//! The reader task of a subscription (consume, wait, reclaim) and the subscription stream.

use super::*;

pub(super) struct ReadSettings {
    pub(super) block: Duration,
    pub(super) claim_idle: Duration,
    pub(super) count: usize,
}

pub(super) async fn read_loop(
    sh: Arc<SubShared>,
    mut conn: ConnectionManager,
    tx: mpsc::Sender<Result<StreamMessage>>,
    shutdown: Arc<watch::Sender<bool>>,
    settings: ReadSettings,
) {
    let mut stop = shutdown.subscribe();
    let claim_every =
        (settings.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut next_claim = Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() || tx.is_closed() {
            return;
        }
        if Instant::now() >= next_claim {
            match reclaim(&sh, &mut conn, settings.claim_idle, settings.count).await {
                Ok(messages) => {
                    for m in messages {
                        if !deliver(&tx, &mut stop, m).await {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %sh.scrub.scrub(e), stream = %sh.key, "redis: reclaim failed")
                }
            }
            next_claim = Instant::now() + claim_every;
        }
        // Consume without blocking (atomically with reading the newest id), then wait for new
        // entries with a plain `XREAD BLOCK`, which claims nothing: abandoning that wait (on
        // drop or shutdown) can never leave an entry pending on a consumer that is gone.
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&sh.group)
            .arg(&sh.consumer)
            .arg("COUNT")
            .arg(settings.count)
            .arg("STREAMS")
            .arg(&sh.key)
            .arg(">");
        pipe.cmd("XREVRANGE")
            .arg(&sh.key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let result: redis::RedisResult<(Value, Value)> = pipe.query_async(&mut conn).await;
        let error = match result {
            Ok((read, newest)) => {
                backoff = Duration::from_millis(50);
                let entries = entry::parse_read(read);
                if !entries.is_empty() {
                    for (id, entry) in entries {
                        match entry {
                            Some(entry) => {
                                let m = StreamMessage {
                                    sub: sh.clone(),
                                    entry,
                                    attempt: 1,
                                };
                                if !deliver(&tx, &mut stop, m).await {
                                    return;
                                }
                            }
                            None => sh.writer.send_detached(sh.xack(&id)),
                        }
                    }
                    continue;
                }
                let last = entry::parse_entries(newest)
                    .into_iter()
                    .next()
                    .map(|(id, _)| id)
                    .unwrap_or_else(|| "0-0".to_owned());
                let wait = settings
                    .block
                    .min(next_claim.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(1));
                let mut cmd = redis::cmd("XREAD");
                cmd.arg("BLOCK")
                    .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
                    .arg("COUNT")
                    .arg(1)
                    .arg("STREAMS")
                    .arg(&sh.key)
                    .arg(last);
                let waited = tokio::select! {
                    r = cmd.query_async::<Value>(&mut conn) => r,
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tx.closed() => return,
                };
                match waited {
                    Ok(_) => continue,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        if tx.is_closed() {
            // Dropped meanwhile (its per-subscription group may be gone on purpose).
            return;
        }
        let msg = sh.scrub.scrub(&error);
        if msg.contains("NOGROUP") {
            // The stream or group vanished (deleted, or a server restart without persistence):
            // recreate it and go on.
            if let Err(e) = create_group(&sh.writer, &sh.key, &sh.group).await {
                tracing::warn!(error = %e, stream = %sh.key, "redis: recreating group failed");
            }
        } else {
            tracing::warn!(error = %msg, stream = %sh.key, "redis: reading failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn deliver(
    tx: &mpsc::Sender<Result<StreamMessage>>,
    stop: &mut watch::Receiver<bool>,
    m: StreamMessage,
) -> bool {
    tokio::select! {
        r = tx.send(Ok(m)) => r.is_ok(),
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// Claim entries of the group idle for at least `claim_idle`; dead-letter those that reached
/// the attempt limit and return the others for delivery.
async fn reclaim(
    sh: &Arc<SubShared>,
    conn: &mut ConnectionManager,
    claim_idle: Duration,
    count: usize,
) -> redis::RedisResult<Vec<StreamMessage>> {
    let idle_ms = u64::try_from(claim_idle.as_millis()).unwrap_or(u64::MAX);
    let mut cmd = redis::cmd("XPENDING");
    cmd.arg(&sh.key)
        .arg(&sh.group)
        .arg("IDLE")
        .arg(idle_ms)
        .arg("-")
        .arg("+")
        .arg(count);
    let pending = entry::parse_pending(cmd.query_async::<Value>(conn).await?);
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let claimed = entry::parse_entries(
        sh.xclaim(claim_idle, pending.iter().map(|(id, _)| id.as_str()))
            .query_async::<Value>(conn)
            .await?,
    );
    let mut out = Vec::with_capacity(claimed.len());
    for (id, entry) in claimed {
        let delivered = pending
            .iter()
            .find(|(p, _)| *p == id)
            .map(|(_, n)| *n)
            .unwrap_or(1);
        match entry {
            None => sh.writer.send_detached(sh.xack(&id)),
            Some(entry) if delivered >= sh.max_attempts => {
                if let Err(e) = sh.dead_letter(&entry, delivered).await {
                    tracing::warn!(error = %e, stream = %sh.key, "redis: dead-lettering failed");
                }
            }
            Some(entry) => out.push(StreamMessage {
                sub: sh.clone(),
                entry,
                attempt: delivered.saturating_add(1),
            }),
        }
    }
    Ok(out)
}

/// A subscription: a stream of [`StreamMessage`]s. Dropping it stops reading; a
/// per-subscription group is destroyed, a named group keeps its pending entries for others.
pub struct StreamSubscription {
    pub(super) rx: mpsc::Receiver<Result<StreamMessage>>,
    pub(super) guard: SubGuard,
}

impl std::fmt::Debug for StreamSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSubscription")
            .field("stream", &self.guard.shared.key)
            .field("group", &self.guard.shared.group)
            .finish_non_exhaustive()
    }
}

impl StreamSubscription {
    /// The consumer group this subscription reads with.
    pub fn group(&self) -> &str {
        &self.guard.shared.group
    }
}

pub(super) struct SubGuard {
    pub(super) shared: Arc<SubShared>,
    pub(super) task: JoinHandle<()>,
    pub(super) ephemeral: bool,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        // The reader task notices the closed channel and ends on its own; it is not aborted
        // so that a read in flight is never cut between consuming and delivering.
        let _ = &self.task;
        if self.ephemeral {
            let mut cmd = redis::cmd("XGROUP");
            cmd.arg("DESTROY")
                .arg(&self.shared.key)
                .arg(&self.shared.group);
            self.shared.writer.send_detached(cmd);
        }
    }
}

impl Stream for StreamSubscription {
    type Item = Result<StreamMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
