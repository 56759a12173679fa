// Settling consumes the message: acking twice is a use of a moved value.
use ruststream::IncomingMessage;
use ruststream::memory::MemoryMessage;

async fn settle_twice(message: MemoryMessage) {
    message.ack().await.unwrap();
    message.ack().await.unwrap();
}

fn main() {
    drop(settle_twice);
}
