//! Generates the service code from `specs/interop.yaml` (the document both stacks implement)
//! and clients from the documents FastStream exported for `python/pricing_app.py`
//! (`data/pricing-<broker>.asyncapi.json`, the other direction of spec-first).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ruststream_build::Config::new()
        .module_name("interop")
        .compile("specs/interop.yaml")?;
    for broker in ["nats", "redis"] {
        ruststream_build::Config::new()
            .module_name(format!("pricing_{broker}"))
            .compile(format!("data/pricing-{broker}.asyncapi.json"))?;
    }
    Ok(())
}
