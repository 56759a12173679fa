//! Generates the service code from `specs/interop.yaml` (the document both stacks implement).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ruststream_build::Config::new()
        .module_name("interop")
        .compile("specs/interop.yaml")?;
    // The document FastStream exports for `python/rabbit_app.py` (`tests/rabbitmq.rs`).
    ruststream_build::Config::new()
        .module_name("faststream_rabbit")
        .compile("specs/faststream-rabbit.json")?;
    Ok(())
}
