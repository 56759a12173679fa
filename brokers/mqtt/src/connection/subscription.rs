//! Subscriptions and the persistent sessions behind durable ones.

use super::*;

pub(super) struct SubGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) filter: String,
    pub(super) route_id: usize,
    pub(super) unsubscribe: bool,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        let mut st = self.shared.state();
        let Some(entry) = st.filters.get_mut(&self.filter) else {
            return;
        };
        entry.routes.retain(|r| r.id != self.route_id);
        if entry.routes.is_empty() {
            let sub_id = entry.sub_id;
            st.filters.remove(&self.filter);
            st.ids.remove(&sub_id);
            if self.unsubscribe && !self.shared.closed.load(Ordering::Acquire) {
                let _ = self.shared.client.try_unsubscribe(self.filter.clone());
            }
        }
    }
}

/// A subscription: a stream of [`MqttMessage`]s. Dropping it unsubscribes (when no other
/// subscription of this connection uses the same filter).
pub struct MqttSubscription {
    pub(super) rx: mpsc::UnboundedReceiver<Result<MqttMessage>>,
    pub(super) guard: SubGuard,
    pub(super) session: Option<DurableSession>,
}

/// The persistent-session connection behind a durable subscription: disconnected (session
/// kept) when the subscription is dropped.
pub(super) struct DurableSession {
    pub(super) owner: Arc<Shared>,
    pub(super) route_id: usize,
    pub(super) conn: Option<MqttConnection>,
}

impl Drop for DurableSession {
    fn drop(&mut self) {
        self.owner
            .durables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.route_id);
        if let (Some(conn), Ok(rt)) = (self.conn.take(), tokio::runtime::Handle::try_current()) {
            // Acknowledgements queued before this point are written before the DISCONNECT.
            rt.spawn(close(conn.shared));
        }
    }
}

impl std::fmt::Debug for MqttSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSubscription")
            .field("filter", &self.guard.filter)
            .field("durable", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl Stream for MqttSubscription {
    type Item = Result<MqttMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
