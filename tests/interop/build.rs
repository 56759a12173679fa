//! Generates the service code from `specs/interop.yaml` (the document both stacks implement)
//! and clients from the documents FastStream exported for `python/pricing_app.py`
//! (`data/pricing-<broker>.asyncapi.json`) and `python/rabbit_app.py`
//! (`specs/faststream-rabbit.json`): the other direction of spec-first.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ruststream_build::Config::new()
        .module_name("interop")
        .compile("specs/interop.yaml")?;
    // The document FastStream exports for `python/rabbit_app.py` (`tests/rabbitmq.rs`).
    ruststream_build::Config::new()
        .module_name("faststream_rabbit")
        .compile("specs/faststream-rabbit.json")?;
    for broker in ["nats", "redis"] {
        ruststream_build::Config::new()
            .module_name(format!("pricing_{broker}"))
            .compile(format!("data/pricing-{broker}.asyncapi.json"))?;
    }
    Ok(())
}
