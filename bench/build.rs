//! Generates the bench service's typed code from `asyncapi.yaml` (and, for `validate-consume`,
//! from `validated.yaml` with validation on and off).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    ruststream_build::Config::new()
        .module_name("bench_service")
        .compile("asyncapi.yaml")?;
    // `vs-upstream`: upstream ruststream's own bench message.
    ruststream_build::Config::new()
        .module_name("bench_order")
        .compile("order.yaml")?;
    // `validate-consume`: the same event with constraints, validated and not.
    for (name, validate) in [("bench_validated", true), ("bench_unvalidated", false)] {
        ruststream_build::Config::new()
            .module_name(name)
            .validate(validate)
            .compile("validated.yaml")?;
    }
    Ok(())
}
