//! Optional capabilities of Redis Streams: batch subscriptions and `MULTI`/`EXEC`
//! transactions.

use std::future::Future;
use std::time::Duration;

use redis::Cmd;
use ruststream::capability::{BatchSubscriber, Batched, Transaction, TransactionalPublisher};
use ruststream::{Address, Error, OutgoingMessage, Result, SubscribeOptions, Subscriber};

use crate::entry;
use crate::streams::{StreamMessage, StreamSubscription, StreamsConnection};
use crate::writer::reply;

/// Batches of [`StreamMessage`]s: up to `max` messages, or fewer once `max_wait` has passed
/// since the first message of the batch arrived.
pub type StreamBatches = Batched<StreamSubscription, StreamMessage>;

impl BatchSubscriber for StreamsConnection {
    type Batches = StreamBatches;

    async fn subscribe_batch(
        &self,
        address: &Address,
        mut options: SubscribeOptions,
        max: usize,
        max_wait: Duration,
    ) -> Result<StreamBatches> {
        let max = max.max(1);
        if options.prefetch.is_none() {
            options.prefetch = Some(u32::try_from(max).unwrap_or(u32::MAX));
        }
        let sub = self.subscribe(address, options).await?;
        Ok(StreamBatches::new(sub, max, max_wait))
    }
}

/// A `MULTI`/`EXEC` publish transaction: staged `XADD`s become visible together on commit.
pub struct StreamsTransaction {
    conn: StreamsConnection,
    staged: Vec<Cmd>,
}

impl std::fmt::Debug for StreamsTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsTransaction")
            .field("staged", &self.staged.len())
            .finish()
    }
}

impl Transaction for StreamsTransaction {
    fn publish(&mut self, message: OutgoingMessage) -> impl Future<Output = Result<()>> + Send {
        let result = if self.conn.is_closed() {
            Err(Error::Closed)
        } else {
            entry::xadd(&message, self.conn.maxlen(), self.conn.format())
                .map(|cmd| self.staged.push(cmd))
        };
        async move { result }
    }

    async fn commit(self) -> Result<()> {
        if self.conn.is_closed() {
            return Err(Error::Closed);
        }
        if self.staged.is_empty() {
            return Ok(());
        }
        let mut cmds = Vec::with_capacity(self.staged.len() + 2);
        cmds.push(redis::cmd("MULTI"));
        cmds.extend(self.staged);
        cmds.push(redis::cmd("EXEC"));
        match reply(self.conn.writer().send_group(cmds)).await? {
            redis::Value::Nil => Err(Error::transport(
                "redis",
                "transaction aborted (EXEC returned nil)",
            )),
            _ => Ok(()),
        }
    }

    async fn abort(self) -> Result<()> {
        // Nothing was sent: staged commands are dropped.
        Ok(())
    }
}

impl TransactionalPublisher for StreamsConnection {
    type Transaction = StreamsTransaction;

    async fn begin(&self) -> Result<StreamsTransaction> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        Ok(StreamsTransaction {
            conn: self.clone(),
            staged: Vec::new(),
        })
    }
}
