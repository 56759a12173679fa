//! Outcome counters of a running router.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters of message outcomes (one set per route plus a total). Lock-free; read them with
/// [`RouterStats::snapshot`] or the atomics directly.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RouterStats {
    /// Messages taken from the broker.
    pub received: AtomicU64,
    /// Messages acked after success.
    pub acked: AtomicU64,
    /// Messages nacked (handler failure, policy `Nack`).
    pub nacked: AtomicU64,
    /// Messages rejected (decode failure or handler failure, policy `Reject`).
    pub rejected: AtomicU64,
    /// Messages published to a dead-letter address by the router.
    pub dead_lettered: AtomicU64,
    /// Messages that could not be decoded.
    pub decode_failures: AtomicU64,
    /// Messages that decoded but violate their schema (settled like decode failures, by the
    /// route's `DecodePolicy`; not counted in `decode_failures`).
    pub validation_failures: AtomicU64,
    /// Handler panics caught.
    pub panics: AtomicU64,
    /// Handler attempts that failed (errors, timeouts and panics).
    pub handler_errors: AtomicU64,
    /// Handler attempts that ran out of time.
    pub timeouts: AtomicU64,
    /// Local retries performed.
    pub retries: AtomicU64,
    /// Settlements or dead-letter publishes the broker refused.
    pub settle_errors: AtomicU64,
    /// Messages being handled right now.
    pub in_flight: AtomicI64,
}

/// A plain copy of [`RouterStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// See [`RouterStats::received`].
    pub received: u64,
    /// See [`RouterStats::acked`].
    pub acked: u64,
    /// See [`RouterStats::nacked`].
    pub nacked: u64,
    /// See [`RouterStats::rejected`].
    pub rejected: u64,
    /// See [`RouterStats::dead_lettered`].
    pub dead_lettered: u64,
    /// See [`RouterStats::decode_failures`].
    pub decode_failures: u64,
    /// See [`RouterStats::validation_failures`].
    pub validation_failures: u64,
    /// See [`RouterStats::panics`].
    pub panics: u64,
    /// See [`RouterStats::handler_errors`].
    pub handler_errors: u64,
    /// See [`RouterStats::timeouts`].
    pub timeouts: u64,
    /// See [`RouterStats::retries`].
    pub retries: u64,
    /// See [`RouterStats::settle_errors`].
    pub settle_errors: u64,
    /// See [`RouterStats::in_flight`].
    pub in_flight: i64,
}

impl StatsSnapshot {
    /// Messages settled one way or another (acked + nacked + rejected + dead-lettered).
    pub fn settled(&self) -> u64 {
        self.acked + self.nacked + self.rejected + self.dead_lettered
    }
}

impl RouterStats {
    /// Read every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            received: r(&self.received),
            acked: r(&self.acked),
            nacked: r(&self.nacked),
            rejected: r(&self.rejected),
            dead_lettered: r(&self.dead_lettered),
            decode_failures: r(&self.decode_failures),
            validation_failures: r(&self.validation_failures),
            panics: r(&self.panics),
            handler_errors: r(&self.handler_errors),
            timeouts: r(&self.timeouts),
            retries: r(&self.retries),
            settle_errors: r(&self.settle_errors),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// A route's counters together with the router totals.
#[derive(Debug, Clone)]
pub(crate) struct Counters {
    pub(crate) route: std::sync::Arc<RouterStats>,
    pub(crate) total: std::sync::Arc<RouterStats>,
    /// The route has one worker, the only writer of its counters: they are updated with a
    /// plain load and store instead of a locked read-modify-write (readers still see whole
    /// values; the totals, shared by routes, keep the read-modify-write).
    pub(crate) single_writer: bool,
}

impl Counters {
    pub(crate) fn inc(&self, f: impl Fn(&RouterStats) -> &AtomicU64) {
        let own = f(&self.route);
        if self.single_writer {
            own.store(own.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        } else {
            own.fetch_add(1, Ordering::Relaxed);
        }
        f(&self.total).fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn in_flight(&self, delta: i64) {
        let own = &self.route.in_flight;
        if self.single_writer {
            own.store(own.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
        } else {
            own.fetch_add(delta, Ordering::Relaxed);
        }
        self.total.in_flight.fetch_add(delta, Ordering::Relaxed);
    }
}
