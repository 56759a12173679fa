//! Generates the bench service's typed code from `asyncapi.yaml`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ruststream_build::Config::new()
        .module_name("bench_service")
        .compile("asyncapi.yaml")?;
    Ok(())
}
