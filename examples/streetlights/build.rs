//! Generates the service code from `asyncapi.yaml`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ruststream_build::Config::new().compile("asyncapi.yaml")?;
    Ok(())
}
