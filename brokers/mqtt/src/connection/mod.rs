//! The connection: one rumqttc client whose event loop runs on a background task.
//!
//! Every request to the event loop (publish, subscribe, unsubscribe) is queued under one lock
//! together with its waiter, so waiters line up with the `Outgoing` events the loop reports
//! and each publish resolves on its own `PUBACK` / `PUBCOMP` (QoS 1/2) or once written (QoS 0).
//! Incoming messages are routed by MQTT 5 subscription identifier.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::v5::{
    Packet, PubAckReason, PubCompReason, PubRecReason, Publish, PublishProperties,
    SubscribeProperties, SubscribeReasonCode,
};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use ruststream::capability::{Reply, RequestReply};
use ruststream::{
    Address, Broker, Capabilities, Connection, Error, Headers, IncomingMessage, OutgoingMessage,
    Publisher, Result, SubscribeOptions, Subscriber,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::Config;
use crate::topic;

const BROKER: &str = "mqtt";
/// Subscription identifier of the reply inbox.
const INBOX_ID: usize = 1;

/// A configured MQTT 5 broker (no I/O until [`Broker::connect`]).
#[derive(Debug, Clone, Default)]
pub struct Mqtt {
    config: Config,
}

impl Mqtt {
    /// A broker for `config`.
    pub fn new(config: Config) -> Self {
        Mqtt { config }
    }
}

type Waiter = Option<oneshot::Sender<Result<()>>>;
type Delivery = mpsc::UnboundedSender<Result<MqttMessage>>;

struct Route {
    id: usize,
    template: Address,
    tx: Delivery,
}

struct FilterEntry {
    sub_id: usize,
    qos: crate::Qos,
    routes: Vec<Route>,
}

#[derive(Default)]
struct State {
    /// Publishes queued to the event loop, in order, until their `Outgoing::Publish`.
    publish_queue: VecDeque<Waiter>,
    /// QoS 1/2 publishes written, awaiting `PUBACK` / `PUBCOMP`, by packet id.
    awaiting: HashMap<u16, Waiter>,
    subscribe_queue: VecDeque<Waiter>,
    awaiting_suback: HashMap<u16, Waiter>,
    /// Active filters (a filter is subscribed once per session however many routes use it).
    filters: HashMap<String, FilterEntry>,
    /// Subscription identifier → filter.
    ids: HashMap<usize, String>,
    /// Outstanding requests by correlation data.
    requests: HashMap<Bytes, oneshot::Sender<MqttMessage>>,
    /// Durable-session connections only: messages that arrived before their subscription was
    /// (re)established, kept unacknowledged until a route takes them.
    parked: Vec<MqttMessage>,
    connected_once: bool,
}

struct Shared {
    config: Config,
    client: AsyncClient,
    client_id: String,
    inbox: String,
    closed: AtomicBool,
    loop_done: AtomicBool,
    state: Mutex<State>,
    /// Publishes not yet confirmed (for `flush`).
    outstanding: watch::Sender<usize>,
    next_id: AtomicUsize,
    next_corr: AtomicU64,
    /// This connection carries one durable subscription (persistent session): never
    /// acknowledge a message no route has taken; park it instead.
    durable_session: bool,
    /// Connections carrying this connection's durable subscriptions, by route id.
    durables: Mutex<HashMap<usize, MqttConnection>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than stopping; recover the guard.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn resolve_publish(&self, waiter: Waiter, result: Result<()>) {
        if let Some(w) = waiter {
            let _ = w.send(result);
        }
        self.outstanding.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A live MQTT connection (cheap to clone).
#[derive(Clone)]
pub struct MqttConnection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MqttConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConnection")
            .field("client_id", &self.shared.client_id)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

fn unique_client_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "rs-{}-{:x}-{}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Broker for Mqtt {
    type Connection = MqttConnection;

    fn name(&self) -> &'static str {
        BROKER
    }

    async fn connect(self) -> Result<MqttConnection> {
        connect(self.config, false).await
    }
}

async fn connect(config: Config, durable_session: bool) -> Result<MqttConnection> {
    if !config.clean_start && config.client_id.is_none() {
        return Err(Error::Config(
            "mqtt: a persistent session (clean_start = false) needs a fixed client id".into(),
        ));
    }
    let client_id = config.client_id.clone().unwrap_or_else(unique_client_id);
    let mut options = MqttOptions::new(client_id.clone(), config.host.clone(), config.port);
    options
        .set_keep_alive(config.keep_alive.max(Duration::from_secs(5)))
        .set_clean_start(config.clean_start)
        .set_manual_acks(true)
        .set_max_packet_size(Some(config.max_packet_size))
        .set_request_channel_capacity(config.request_capacity.max(1));
    if !config.clean_start {
        let secs = u32::try_from(config.session_expiry.as_secs()).unwrap_or(u32::MAX);
        options.set_session_expiry_interval(Some(secs));
    }
    if let Some(c) = &config.credentials {
        options.set_credentials(c.username.clone(), c.password.clone());
    }
    let (client, eventloop) = AsyncClient::new(options, config.request_capacity.max(1));
    let inbox = format!("{}/{client_id}", config.reply_prefix);
    let (outstanding, _) = watch::channel(0usize);
    let shared = Arc::new(Shared {
        config,
        client,
        client_id,
        inbox: inbox.clone(),
        closed: AtomicBool::new(false),
        loop_done: AtomicBool::new(false),
        state: Mutex::new(State::default()),
        outstanding,
        next_id: AtomicUsize::new(INBOX_ID + 1),
        next_corr: AtomicU64::new(0),
        durable_session,
        durables: Mutex::new(HashMap::new()),
    });
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(run_loop(shared.clone(), eventloop, ready_tx));
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(Error::transport(
                BROKER,
                "event loop ended before connecting",
            ));
        }
    }
    let conn = MqttConnection { shared };
    // The reply inbox, subscribed once per connection.
    conn.subscribe_filter(inbox, crate::Qos::AtLeastOnce, Some(INBOX_ID))
        .await?;
    Ok(conn)
}

mod eventloop;
mod message;
mod subscription;

use eventloop::{AckToken, run_loop};
pub use message::MqttMessage;
pub use subscription::MqttSubscription;
use subscription::{DurableSession, SubGuard};

impl MqttConnection {
    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire)
            || self.shared.loop_done.load(Ordering::Acquire)
        {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// This connection's client id.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// Queue a request with its waiter under the state lock (`attempt` pushes the waiter, sends
    /// the request and takes the waiter back if sending failed); retry while the queue is full.
    async fn enqueue(
        &self,
        mut attempt: impl FnMut(&mut State, &AsyncClient) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if attempt(&mut self.shared.state(), &self.shared.client) {
                return Ok(());
            }
            if self.shared.loop_done.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(
                    "mqtt: the client's request queue stayed full (or refused the request)".into(),
                ));
            }
            // The request queue is full: let the event loop drain it.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn subscribe_filter(
        &self,
        filter: String,
        qos: crate::Qos,
        id: Option<usize>,
    ) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let props = SubscribeProperties {
            id,
            user_properties: Vec::new(),
        };
        self.enqueue(|st, c| {
            st.subscribe_queue.push_back(tx.take());
            let sent = c
                .try_subscribe_with_properties(filter.clone(), qos.to_rumqttc(), props.clone())
                .is_ok();
            if !sent && let Some(Some(t)) = st.subscribe_queue.pop_back() {
                tx = Some(t);
            }
            sent
        })
        .await?;
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout("mqtt: no SUBACK within 10 s".into())),
        }
    }

    fn build_properties(message: &OutgoingMessage) -> PublishProperties {
        PublishProperties {
            response_topic: message.reply_to.clone(),
            correlation_data: message
                .correlation_id
                .as_ref()
                .map(|c| Bytes::copy_from_slice(c.as_bytes())),
            user_properties: message
                .headers
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            content_type: message
                .headers
                .get(ruststream::message::names::CONTENT_TYPE)
                .map(str::to_owned),
            ..PublishProperties::default()
        }
    }

    async fn publish_inner(&self, message: OutgoingMessage) -> Result<()> {
        self.check_open()?;
        topic::check_topic(&message.address)?;
        let qos = self.shared.config.qos_of(&message.address);
        let retain = self.shared.config.retain_of(&message.address);
        let props = Self::build_properties(&message);
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let topic = message.address;
        let payload = message.payload;
        let shared = &self.shared;
        self.enqueue(|st, c| {
            st.publish_queue.push_back(tx.take());
            let sent = c
                .try_publish_with_properties(
                    topic.clone(),
                    qos.to_rumqttc(),
                    retain,
                    payload.clone(),
                    props.clone(),
                )
                .is_ok();
            if sent {
                shared.outstanding.send_modify(|n| *n += 1);
            } else if let Some(Some(t)) = st.publish_queue.pop_back() {
                tx = Some(t);
            }
            sent
        })
        .await?;
        rx.await.unwrap_or(Err(Error::Closed))
    }
}

impl Publisher for MqttConnection {
    fn publish(&self, message: OutgoingMessage) -> impl Future<Output = Result<()>> + Send {
        self.publish_inner(message)
    }

    async fn flush(&self) -> Result<()> {
        let mut rx = self.shared.outstanding.subscribe();
        rx.wait_for(|n| *n == 0)
            .await
            .map(|_| ())
            .map_err(|_| Error::Closed)
    }
}

impl Subscriber for MqttConnection {
    type Message = MqttMessage;
    type Subscription = MqttSubscription;

    async fn subscribe(
        &self,
        address: &Address,
        options: SubscribeOptions,
    ) -> Result<MqttSubscription> {
        self.check_open()?;
        let Some(name) = options.durable.clone() else {
            return self.subscribe_plain(address, &options).await;
        };
        // A durable subscription is a persistent session of its own, keyed by the durable name:
        // while it is away the broker keeps its subscription and queues QoS 1/2 messages.
        topic::check_group(&name)?;
        let mut config = self.shared.config.clone();
        config.client_id = Some(format!("{}{name}", config.durable_prefix));
        config.clean_start = false;
        let inner = connect(config, true).await?;
        let mut sub = match inner.subscribe_plain(address, &options).await {
            Ok(sub) => sub,
            Err(e) => {
                let _ = inner.shutdown().await;
                return Err(e);
            }
        };
        let route_id = sub.guard.route_id;
        self.shared
            .durables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(route_id, inner.clone());
        // Keep the broker-side subscription when this one is dropped; disconnect instead.
        sub.guard.unsubscribe = false;
        sub.session = Some(DurableSession {
            owner: self.shared.clone(),
            route_id,
            conn: Some(inner),
        });
        Ok(sub)
    }
}

impl MqttConnection {
    async fn subscribe_plain(
        &self,
        address: &Address,
        options: &SubscribeOptions,
    ) -> Result<MqttSubscription> {
        let mut filter = topic::filter(address)?;
        if let Some(group) = &options.queue_group {
            topic::check_group(group)?;
            filter = format!("$share/{group}/{filter}");
        }
        let qos = self.shared.config.qos_of_template(address);
        let route_id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let new_id = {
            let mut st = self.shared.state();
            // A resumed durable session may have delivered before this route existed.
            let parked = std::mem::take(&mut st.parked);
            for m in parked {
                if address.matches(&m.topic) {
                    let _ = tx.send(Ok(m));
                } else {
                    st.parked.push(m);
                }
            }
            let route = Route {
                id: route_id,
                template: address.clone(),
                tx,
            };
            match st.filters.get_mut(&filter) {
                Some(entry) => {
                    entry.routes.push(route);
                    None
                }
                None => {
                    let sub_id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                    st.filters.insert(
                        filter.clone(),
                        FilterEntry {
                            sub_id,
                            qos,
                            routes: vec![route],
                        },
                    );
                    st.ids.insert(sub_id, filter.clone());
                    Some(sub_id)
                }
            }
        };
        let guard = SubGuard {
            shared: self.shared.clone(),
            filter: filter.clone(),
            route_id,
            unsubscribe: true,
        };
        if let Some(sub_id) = new_id {
            self.subscribe_filter(filter, qos, Some(sub_id)).await?;
        }
        Ok(MqttSubscription {
            rx,
            guard,
            session: None,
        })
    }
}

impl Connection for MqttConnection {
    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::NONE;
        c.ack = self.shared.config.default_qos != crate::Qos::AtMostOnce;
        c.headers = true;
        c.queue_groups = true;
        c.ordered = true;
        c.durable = c.ack;
        c.request_reply = true;
        c.batch = true;
        c.wildcards = true;
        c
    }

    async fn shutdown(self) -> Result<()> {
        let durables: Vec<Arc<Shared>> = self
            .shared
            .durables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, c)| c.shared)
            .collect();
        for d in durables {
            close(d).await;
        }
        close(self.shared).await;
        Ok(())
    }
}

/// Flush, end the subscriptions, disconnect (idempotent).
async fn close(shared: Arc<Shared>) {
    if shared.closed.swap(true, Ordering::AcqRel) {
        return;
    }
    // Everything published so far is confirmed (or the loop ended) before disconnecting.
    if !shared.loop_done.load(Ordering::Acquire) {
        let mut rx = shared.outstanding.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|n| *n == 0)).await;
    }
    {
        let mut st = shared.state();
        st.filters.clear();
        st.ids.clear();
        st.requests.clear();
        st.parked.clear();
    }
    let _ = shared.client.try_disconnect();
}

impl RequestReply for MqttConnection {
    async fn request(&self, mut message: OutgoingMessage, timeout: Duration) -> Result<Reply> {
        self.check_open()?;
        let corr = message.correlation_id.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                self.shared.client_id,
                self.shared.next_corr.fetch_add(1, Ordering::Relaxed)
            )
        });
        message.correlation_id = Some(corr.clone());
        message.reply_to = Some(self.shared.inbox.clone());
        let key = Bytes::copy_from_slice(corr.as_bytes());
        let (tx, rx) = oneshot::channel();
        self.shared.state().requests.insert(key.clone(), tx);
        let outcome = tokio::time::timeout(timeout, async {
            self.publish_inner(message).await?;
            rx.await.map_err(|_| Error::Closed)
        })
        .await;
        match outcome {
            Ok(Ok(m)) => Ok(Reply::new(m.payload, m.headers, m.correlation_id)),
            Ok(Err(e)) => {
                self.shared.state().requests.remove(&key);
                Err(e)
            }
            Err(_) => {
                self.shared.state().requests.remove(&key);
                Err(Error::Timeout(
                    format!("mqtt: no reply within {timeout:?}").into(),
                ))
            }
        }
    }
}
