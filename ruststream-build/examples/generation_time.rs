//! Prints how long generating code for a synthetic 1,000-operation spec takes.
//!
//! `cargo run --release -p ruststream-build --example generation_time [OPERATIONS]`

use std::fmt::Write as _;
use std::time::Instant;

fn spec(operations: usize) -> String {
    let mut s =
        String::from("asyncapi: 3.0.0\ninfo:\n  title: Synthetic\n  version: 1.0.0\nchannels:\n");
    for i in 0..operations {
        let _ = write!(
            s,
            "  ch{i}:\n    address: svc/{{tenant}}/ch{i}\n    parameters:\n      tenant: {{}}\n    messages:\n      m{i}:\n        $ref: '#/components/messages/m{i}'\n"
        );
    }
    s.push_str("operations:\n");
    for i in 0..operations {
        let action = if i % 2 == 0 { "receive" } else { "send" };
        let _ = write!(
            s,
            "  op{i}:\n    action: {action}\n    channel:\n      $ref: '#/channels/ch{i}'\n"
        );
    }
    s.push_str("components:\n  messages:\n");
    for i in 0..operations {
        let _ = write!(
            s,
            "    m{i}:\n      payload:\n        $ref: '#/components/schemas/S{i}'\n"
        );
    }
    s.push_str("  schemas:\n");
    for i in 0..operations {
        let _ = write!(
            s,
            "    S{i}:\n      type: object\n      required: [id]\n      properties:\n        id: {{ type: string }}\n        count: {{ type: integer, format: int32 }}\n        kind: {{ type: string, enum: [a, b, c] }}\n        nested:\n          type: object\n          properties:\n            at: {{ type: string, format: date-time }}\n"
        );
    }
    s
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let operations: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("ruststream-gen-time-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("synthetic.yaml");
    std::fs::write(&path, spec(operations))?;
    let config = ruststream_build::Config::new().emit_rerun_if_changed(false);
    let _warm = config.generate_string(&path)?;
    let runs = 5;
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    let mut size = 0;
    for _ in 0..runs {
        let cpu = cpu_seconds();
        let start = Instant::now();
        let code = config.generate_string(&path)?;
        best = best.min(start.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_seconds() - cpu);
        size = code.len();
    }
    let start = Instant::now();
    let loaded = asyncapi::load(&path, &Default::default()).map_err(|e| e.to_string())?;
    let load = start.elapsed().as_secs_f64();
    drop(loaded);
    println!("load alone: {:.1} ms", load * 1000.0);
    println!(
        "{operations} operations: best of {runs} = {:.1} ms wall, {:.1} ms CPU (load + generate + format), {} KiB of Rust",
        best * 1000.0,
        best_cpu * 1000.0,
        size / 1024
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// User + system CPU time of this process (Linux `/proc/self/stat`, 100 ticks/s), so the figure
/// means something on a busy machine; 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
