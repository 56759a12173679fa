// Any two settlements of one message are rejected at compile time, for every broker.
use ruststream::IncomingMessage;

async fn ack_then_nack<M: IncomingMessage>(message: M) {
    message.ack().await.unwrap();
    message.nack(true).await.unwrap();
}

fn main() {
    drop(ack_then_nack::<ruststream::memory::MemoryMessage>);
}
