//! The reader task of a subscription (consume, wait, reclaim) and the subscription stream.

use super::*;

pub(super) struct ReadSettings {
    pub(super) block: Duration,
    pub(super) claim_idle: Duration,
    pub(super) count: usize,
}

/// Everything but the stream key of a subscription's per-stream state.
pub(super) struct SubSpec {
    pub(super) group: String,
    pub(super) consumer: String,
    pub(super) writer: Writer,
    pub(super) tx: mpsc::WeakSender<Result<StreamMessage>>,
    /// Explicit dead-letter stream; `None` means `<stream>:dlq`.
    pub(super) dead_letter: Option<String>,
    pub(super) max_attempts: u32,
    pub(super) claim_idle: Duration,
    pub(super) scrub: Scrubber,
    pub(super) replies: Arc<crate::reply::ReplyChannels>,
}

impl SubSpec {
    pub(super) fn for_key(&self, key: String, start: String) -> Arc<SubShared> {
        Arc::new(SubShared {
            dead_letter: self
                .dead_letter
                .clone()
                .unwrap_or_else(|| format!("{key}:dlq")),
            key,
            group: self.group.clone(),
            consumer: self.consumer.clone(),
            start,
            writer: self.writer.clone(),
            tx: self.tx.clone(),
            max_attempts: self.max_attempts,
            claim_idle: self.claim_idle,
            scrub: self.scrub.clone(),
            replies: self.replies.clone(),
        })
    }
}

/// Template subscriptions: streams whose keys match are found with `SCAN … TYPE stream`.
pub(super) struct Discovery {
    pub(super) template: Address,
    pub(super) pattern: String,
    /// Group start id for discovered streams: the subscription's start time on the server,
    /// so entries added after `subscribe` are delivered even if discovery finds them later.
    pub(super) start: String,
    pub(super) every: Duration,
    pub(super) spec: SubSpec,
}

impl Discovery {
    fn wants(&self, key: &str) -> bool {
        self.template.matches(key)
            && !key.ends_with(":dlq")
            && self.spec.dead_letter.as_deref() != Some(key)
    }
}

/// The streams a subscription reads (grows with discovery).
pub(super) type Streams = Arc<Mutex<Vec<Arc<SubShared>>>>;

fn current(streams: &Streams) -> Vec<Arc<SubShared>> {
    streams.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

async fn discover(
    d: &Discovery,
    streams: &Streams,
    conn: &mut ConnectionManager,
) -> redis::RedisResult<()> {
    let mut cursor: u64 = 0;
    let mut found = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&d.pattern)
            .arg("COUNT")
            .arg(1000)
            .arg("TYPE")
            .arg("stream")
            .query_async(conn)
            .await?;
        found.extend(keys.into_iter().filter(|k| d.wants(k)));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let known: Vec<String> = current(streams).iter().map(|s| s.key.clone()).collect();
    for key in found {
        if known.contains(&key) {
            continue;
        }
        let sh = d.spec.for_key(key, d.start.clone());
        match create_group_at(&sh.writer, &sh.key, &sh.group, &sh.start).await {
            Ok(()) => streams.lock().unwrap_or_else(|p| p.into_inner()).push(sh),
            Err(e) => {
                tracing::warn!(error = %e, stream = %sh.key, "redis: joining a discovered stream failed")
            }
        }
    }
    Ok(())
}

pub(super) async fn read_loop(
    streams: Streams,
    discovery: Option<Discovery>,
    mut conn: ConnectionManager,
    tx: mpsc::Sender<Result<StreamMessage>>,
    shutdown: Arc<watch::Sender<bool>>,
    settings: ReadSettings,
) {
    let mut stop = shutdown.subscribe();
    let claim_every =
        (settings.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut next_claim = Instant::now();
    let mut next_discovery = Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() || tx.is_closed() {
            return;
        }
        if let Some(d) = &discovery
            && Instant::now() >= next_discovery
        {
            if let Err(e) = discover(d, &streams, &mut conn).await {
                tracing::debug!(error = %d.spec.scrub.scrub(e), "redis: stream discovery failed");
            }
            next_discovery = Instant::now() + d.every;
        }
        let subs = current(&streams);
        if Instant::now() >= next_claim {
            for sh in &subs {
                match reclaim(sh, &mut conn, settings.claim_idle, settings.count).await {
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
            }
            next_claim = Instant::now() + claim_every;
        }
        let mut wake = next_claim;
        if discovery.is_some() {
            wake = wake.min(next_discovery);
        }
        let wait = settings
            .block
            .min(wake.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1));
        let Some(first) = subs.first() else {
            // Nothing discovered yet.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
                _ = tx.closed() => return,
            }
            continue;
        };
        // Consume without blocking (atomically with reading each stream's newest id), then
        // wait for new entries with a plain `XREAD BLOCK`, which claims nothing: abandoning
        // that wait (on drop or shutdown) can never leave an entry pending on a consumer that
        // is gone.
        let mut pipe = redis::pipe();
        pipe.atomic();
        let read = pipe
            .cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&first.group)
            .arg(&first.consumer)
            .arg("COUNT")
            .arg(settings.count)
            .arg("STREAMS");
        for sh in &subs {
            read.arg(&sh.key);
        }
        for _ in &subs {
            read.arg(">");
        }
        for sh in &subs {
            pipe.cmd("XREVRANGE")
                .arg(&sh.key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        let result: redis::RedisResult<Vec<Value>> = pipe.query_async(&mut conn).await;
        let error = match result {
            Ok(mut replies) if !replies.is_empty() => {
                backoff = Duration::from_millis(50);
                let newest = replies.split_off(1);
                let entries = entry::parse_read_keyed(replies.pop().unwrap_or(Value::Nil));
                if !entries.is_empty() {
                    for (key, id, entry) in entries {
                        let Some(sh) = subs.iter().find(|s| s.key == key) else {
                            continue;
                        };
                        match entry {
                            Some(entry) => {
                                let m = StreamMessage::new(sh.clone(), entry, 1);
                                if !deliver(&tx, &mut stop, m).await {
                                    return;
                                }
                            }
                            None => sh.writer.send_detached(sh.xack(&id)),
                        }
                    }
                    continue;
                }
                let mut cmd = redis::cmd("XREAD");
                cmd.arg("BLOCK")
                    .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
                    .arg("COUNT")
                    .arg(1)
                    .arg("STREAMS");
                for sh in &subs {
                    cmd.arg(&sh.key);
                }
                for v in newest
                    .into_iter()
                    .chain(std::iter::repeat(Value::Nil))
                    .take(subs.len())
                {
                    let last = entry::parse_entries(v)
                        .into_iter()
                        .next()
                        .map(|(id, _)| id)
                        .unwrap_or_else(|| "0-0".to_owned());
                    cmd.arg(last);
                }
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
            Ok(_) => continue,
            Err(e) => e,
        };
        if tx.is_closed() {
            // Dropped meanwhile (its per-subscription group may be gone on purpose).
            return;
        }
        let msg = first.scrub.scrub(&error);
        if msg.contains("NOGROUP") {
            // A stream or group vanished (deleted, or a server restart without persistence):
            // recreate them and go on.
            for sh in &subs {
                if let Err(e) = create_group_at(&sh.writer, &sh.key, &sh.group, &sh.start).await {
                    tracing::warn!(error = %e, stream = %sh.key, "redis: recreating group failed");
                }
            }
        } else {
            tracing::warn!(error = %msg, "redis: reading failed; retrying");
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
            Some(entry) => out.push(StreamMessage::new(
                sh.clone(),
                entry,
                delivered.saturating_add(1),
            )),
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
            .field("address", &self.guard.address)
            .field("group", &self.guard.group)
            .finish_non_exhaustive()
    }
}

impl StreamSubscription {
    /// The consumer group this subscription reads with.
    pub fn group(&self) -> &str {
        &self.guard.group
    }

    /// The streams it reads so far (one for a concrete address; those discovered so far for a
    /// template).
    pub fn streams(&self) -> Vec<String> {
        current(&self.guard.streams)
            .iter()
            .map(|s| s.key.clone())
            .collect()
    }
}

pub(super) struct SubGuard {
    pub(super) address: String,
    pub(super) group: String,
    pub(super) streams: Streams,
    pub(super) writer: Writer,
    pub(super) task: JoinHandle<()>,
    pub(super) ephemeral: bool,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        // The reader task notices the closed channel and ends on its own; it is not aborted
        // so that a read in flight is never cut between consuming and delivering.
        let _ = &self.task;
        if self.ephemeral {
            for sh in current(&self.streams) {
                let mut cmd = redis::cmd("XGROUP");
                cmd.arg("DESTROY").arg(&sh.key).arg(&sh.group);
                self.writer.send_detached(cmd);
            }
        }
    }
}

impl Stream for StreamSubscription {
    type Item = Result<StreamMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
