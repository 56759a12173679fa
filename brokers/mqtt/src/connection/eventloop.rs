//! The event loop task: packet bookkeeping, routing of incoming messages, acknowledgements.

use super::*;

/// Drive the event loop until the connection is shut down.
pub(super) async fn run_loop(
    shared: Arc<Shared>,
    mut eventloop: EventLoop,
    ready: oneshot::Sender<Result<()>>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        match eventloop.poll().await {
            Ok(event) => {
                backoff = Duration::from_millis(100);
                if let Event::Incoming(Packet::ConnAck(ack)) = &event {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Ok(()));
                    }
                    on_connack(&shared, ack.session_present);
                }
                let disconnected = matches!(event, Event::Outgoing(Outgoing::Disconnect));
                handle_event(&shared, event);
                if disconnected && shared.closed.load(Ordering::Acquire) {
                    break;
                }
            }
            Err(e) => {
                if shared.closed.load(Ordering::Acquire) {
                    break;
                }
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(Error::transport(
                        BROKER,
                        format!("connect failed: {e}"),
                    )));
                    break;
                }
                tracing::warn!(error = %e, "mqtt: connection error; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    shared.loop_done.store(true, Ordering::Release);
    let mut st = shared.state();
    let mut pending: Vec<Waiter> = st.publish_queue.drain(..).collect();
    pending.extend(st.awaiting.drain().map(|(_, w)| w));
    st.filters.clear();
    st.ids.clear();
    st.requests.clear();
    let mut subs: Vec<Waiter> = st.subscribe_queue.drain(..).collect();
    subs.extend(st.awaiting_suback.drain().map(|(_, w)| w));
    for w in subs.into_iter().flatten() {
        let _ = w.send(Err(Error::Closed));
    }
    drop(st);
    for w in pending {
        shared.resolve_publish(w, Err(Error::Closed));
    }
}

fn on_connack(shared: &Shared, session_present: bool) {
    let mut st = shared.state();
    let first = !st.connected_once;
    st.connected_once = true;
    if first || session_present {
        return;
    }
    // The broker lost our subscriptions (clean session or expired): subscribe again.
    let mut filters: Vec<(String, usize, crate::Qos)> = st
        .filters
        .iter()
        .map(|(f, e)| (f.clone(), e.sub_id, e.qos))
        .collect();
    filters.push((shared.inbox.clone(), INBOX_ID, crate::Qos::AtLeastOnce));
    for (filter, id, qos) in filters {
        st.subscribe_queue.push_back(None);
        let props = SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        };
        if shared
            .client
            .try_subscribe_with_properties(filter.clone(), qos.to_rumqttc(), props)
            .is_err()
        {
            st.subscribe_queue.pop_back();
            tracing::warn!(filter, "mqtt: could not resubscribe after reconnect");
        }
    }
}

fn handle_event(shared: &Arc<Shared>, event: Event) {
    match event {
        Event::Outgoing(Outgoing::Publish(pkid)) => {
            let mut st = shared.state();
            if pkid != 0 && st.awaiting.contains_key(&pkid) {
                return; // a retransmission after reconnect
            }
            let Some(waiter) = st.publish_queue.pop_front() else {
                return;
            };
            if pkid == 0 {
                drop(st);
                shared.resolve_publish(waiter, Ok(()));
            } else {
                st.awaiting.insert(pkid, waiter);
            }
        }
        Event::Outgoing(Outgoing::Subscribe(pkid)) => {
            let mut st = shared.state();
            if st.awaiting_suback.contains_key(&pkid) {
                return;
            }
            if let Some(w) = st.subscribe_queue.pop_front() {
                st.awaiting_suback.insert(pkid, w);
            }
        }
        Event::Incoming(Packet::PubAck(ack)) => {
            let result = match ack.reason {
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                other => Err(Error::transport(
                    BROKER,
                    format!("publish refused: {other:?}"),
                )),
            };
            finish_publish(shared, ack.pkid, result);
        }
        Event::Incoming(Packet::PubRec(rec))
            if !matches!(
                rec.reason,
                PubRecReason::Success | PubRecReason::NoMatchingSubscribers
            ) =>
        {
            finish_publish(
                shared,
                rec.pkid,
                Err(Error::transport(
                    BROKER,
                    format!("publish refused: {:?}", rec.reason),
                )),
            );
        }
        Event::Incoming(Packet::PubComp(comp)) => {
            let result = match comp.reason {
                PubCompReason::Success => Ok(()),
                other => Err(Error::transport(
                    BROKER,
                    format!("publish failed: {other:?}"),
                )),
            };
            finish_publish(shared, comp.pkid, result);
        }
        Event::Incoming(Packet::SubAck(ack)) => {
            let waiter = shared.state().awaiting_suback.remove(&ack.pkid).flatten();
            let refused = ack
                .return_codes
                .iter()
                .find(|c| !matches!(c, SubscribeReasonCode::Success(_)));
            if let Some(w) = waiter {
                let _ = w.send(match refused {
                    None => Ok(()),
                    Some(code) => Err(Error::transport(
                        BROKER,
                        format!("subscription refused: {code:?}"),
                    )),
                });
            }
        }
        Event::Incoming(Packet::Publish(publish)) => dispatch(shared, publish),
        Event::Incoming(Packet::Disconnect(d)) => {
            tracing::warn!(reason = ?d.reason_code, "mqtt: disconnected by the broker");
        }
        _ => {}
    }
}

fn finish_publish(shared: &Shared, pkid: u16, result: Result<()>) {
    let waiter = shared.state().awaiting.remove(&pkid);
    if let Some(w) = waiter {
        shared.resolve_publish(w, result);
    }
}

/// Shared acknowledgement of one incoming QoS 1/2 packet delivered to several subscriptions.
pub(super) struct AckToken {
    remaining: AtomicUsize,
    publish: Publish,
    client: AsyncClient,
}

impl AckToken {
    pub(super) async fn settle(&self) -> Result<()> {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.client
                .ack(&self.publish)
                .await
                .map_err(|e| Error::transport(BROKER, e))?;
        }
        Ok(())
    }
}

fn ack_now(shared: &Shared, publish: &Publish) {
    if publish.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce {
        let _ = shared.client.try_ack(publish);
    }
}

fn ack_token(shared: &Shared, publish: &Publish, shares: usize) -> Option<Arc<AckToken>> {
    (publish.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce).then(|| {
        let mut ack = Publish::new("", publish.qos, Bytes::new(), None);
        ack.pkid = publish.pkid;
        Arc::new(AckToken {
            remaining: AtomicUsize::new(shares),
            publish: ack,
            client: shared.client.clone(),
        })
    })
}

fn dispatch(shared: &Arc<Shared>, publish: Publish) {
    let Ok(topic) = std::str::from_utf8(&publish.topic).map(str::to_owned) else {
        ack_now(shared, &publish);
        return;
    };
    let props = publish.properties.clone().unwrap_or_default();
    let mut headers: Headers = props.user_properties.iter().cloned().collect();
    if let Some(ct) = &props.content_type
        && headers
            .get(ruststream::message::names::CONTENT_TYPE)
            .is_none()
    {
        headers.append(ruststream::message::names::CONTENT_TYPE, ct.clone());
    }
    let correlation = props.correlation_data.clone();
    let base = MqttMessage {
        topic,
        payload: publish.payload.clone(),
        headers,
        reply_to: props.response_topic.clone(),
        correlation_id: correlation
            .as_ref()
            .map(|c| String::from_utf8_lossy(c).into_owned()),
        retained: publish.retain,
        dup: publish.dup,
        ack: None,
    };

    let mut st = shared.state();
    if base.topic == shared.inbox {
        let waiter = correlation.and_then(|c| st.requests.remove(&c));
        drop(st);
        ack_now(shared, &publish);
        if let Some(w) = waiter {
            let _ = w.send(base);
        }
        return;
    }
    let mut targets: Vec<Delivery> = Vec::new();
    let ids = &props.subscription_identifiers;
    for entry in st.filters.values() {
        // A resumed session may deliver with the identifier of an earlier connection.
        let by_id = ids.contains(&entry.sub_id) || shared.durable_session;
        if !ids.is_empty() && !by_id {
            continue;
        }
        for r in &entry.routes {
            if r.template.matches(&base.topic) && !r.tx.is_closed() {
                targets.push(r.tx.clone());
            }
        }
    }
    if targets.is_empty() && shared.durable_session {
        let mut m = base;
        m.ack = ack_token(shared, &publish, 1);
        st.parked.push(m);
        return;
    }
    drop(st);
    if targets.is_empty() {
        ack_now(shared, &publish);
        return;
    }
    let token = ack_token(shared, &publish, targets.len());
    for tx in targets {
        let mut m = base.clone_without_ack();
        m.ack = token.clone();
        if let Err(mpsc::error::SendError(Ok(m))) = tx.send(Ok(m)) {
            // The subscription went away meanwhile: settle its share.
            tokio::spawn(async move {
                let _ = m.ack().await;
            });
        }
    }
}
