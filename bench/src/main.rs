//! RustStream benchmarks: each scenario measures the framework and a raw baseline doing the same
//! work in the same run (interleaved rounds, median) and prints one JSON line:
//!
//! ```text
//! {"scenario":"memory-pipeline","framework":…,"baseline":…,"unit":"msg/s","ratio":…}
//! ```
//!
//! `ratio` is framework ÷ baseline for throughputs and baseline ÷ framework for times and
//! sizes, so higher is always better. For absolute targets (`codegen-large`, `slow-consumer`)
//! the baseline is the target budget.
//!
//! Run `cargo run --release -p ruststream-bench -- <scenario|all> [options]`; see `--help`.

mod codegen;
mod kafka;
mod nats;
mod opts;
mod pipeline;
mod reqrep;
mod service;
mod slow;
mod upstream;
mod validation;

use std::alloc::System;
use std::process::ExitCode;

use serde::Serialize;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

/// Counts every allocation of the process (for the `alloc` scenario; the other scenarios pay
/// the same few relaxed atomic increments on both sides).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Errors of a benchmark run.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
/// Results of a benchmark run.
pub type BenchResult<T> = Result<T, BenchError>;

/// The scenarios `all` runs, in order.
pub const SCENARIOS: &[&str] = &[
    "memory-pipeline",
    "nats-pipeline",
    "kafka-pipeline",
    "request-reply",
    "codegen-large",
    "slow-consumer",
    "alloc",
    "validate-consume",
    "vs-upstream",
];

/// One output line.
#[derive(Debug, Serialize)]
pub struct Line {
    /// Scenario name.
    pub scenario: &'static str,
    /// The framework's figure (median of the rounds).
    pub framework: Option<f64>,
    /// The baseline's figure (median of the rounds), or the target budget.
    pub baseline: Option<f64>,
    /// Unit of both figures.
    pub unit: &'static str,
    /// Higher is better (see the crate docs).
    pub ratio: Option<f64>,
    /// Scenario-specific details.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Line {
    /// A line with a throughput ratio (framework ÷ baseline).
    pub fn throughput(
        scenario: &'static str,
        framework: f64,
        baseline: f64,
        unit: &'static str,
    ) -> Self {
        Line {
            scenario,
            framework: Some(round(framework)),
            baseline: Some(round(baseline)),
            unit,
            ratio: Some(round(framework / baseline)),
            extra: serde_json::Map::new(),
        }
    }

    /// A line with a cost ratio (baseline ÷ framework: times, sizes, counts).
    pub fn cost(scenario: &'static str, framework: f64, baseline: f64, unit: &'static str) -> Self {
        let ratio = (framework > 0.0).then(|| round(baseline / framework));
        Line {
            scenario,
            framework: Some(round(framework)),
            baseline: Some(round(baseline)),
            unit,
            ratio,
            extra: serde_json::Map::new(),
        }
    }

    /// A scenario that could not run.
    pub fn skipped(scenario: &'static str, reason: impl Into<String>) -> Self {
        let mut extra = serde_json::Map::new();
        extra.insert("skipped".into(), reason.into().into());
        Line {
            scenario,
            framework: None,
            baseline: None,
            unit: "",
            ratio: None,
            extra,
        }
    }

    /// Add a detail.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    fn print(&self) {
        match serde_json::to_string(self) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("cannot print result: {e}"),
        }
    }
}

/// Round to 4 significant digits (keeps the JSON readable).
pub fn round(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let digits = 4 - x.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Median of the values (sorted copy).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Allocations (allocs + reallocs) and bytes allocated so far by the whole process.
pub fn alloc_counts() -> (u64, u64) {
    let s = GLOBAL.stats();
    (
        (s.allocations + s.reallocations) as u64,
        (s.bytes_allocated + s.bytes_reallocated.max(0) as usize) as u64,
    )
}

fn run(scenario: &str, opts: &opts::Opts) -> BenchResult<Vec<Line>> {
    Ok(match scenario {
        "memory-pipeline" => vec![pipeline::memory_pipeline(opts)?],
        "nats-pipeline" => vec![nats::nats_pipeline(opts)?],
        "kafka-pipeline" => vec![kafka::kafka_pipeline(opts)?],
        "request-reply" => vec![reqrep::request_reply(opts)?],
        "codegen-large" => vec![codegen::codegen_large(opts)?],
        "slow-consumer" => vec![slow::slow_consumer(opts)?],
        "alloc" => vec![pipeline::alloc(opts)?],
        "consume-only" => vec![pipeline::consume_only(opts)?],
        "validate-consume" => vec![validation::validate_consume(opts)?],
        "vs-upstream" => upstream::vs_upstream(opts)?,
        other => return Err(format!("unknown scenario `{other}` (try --help)").into()),
    })
}

/// `all`: each scenario in its own process, so peak RSS and allocation counts of one scenario
/// do not leak into the next.
fn run_all(opts: &opts::Opts) -> BenchResult<bool> {
    let exe = std::env::current_exe()?;
    let mut ok = true;
    for scenario in SCENARIOS {
        let status = std::process::Command::new(&exe)
            .arg(scenario)
            .args(&opts.forward)
            .status()?;
        if !status.success() {
            ok = false;
        }
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let opts = match opts::Opts::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n\n{}", opts::USAGE);
            return ExitCode::from(2);
        }
    };
    if opts.help {
        println!("{}", opts::USAGE);
        return ExitCode::SUCCESS;
    }
    if opts.scenario == "all" {
        return match run_all(&opts) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&opts.scenario, &opts) {
        Ok(lines) => {
            for line in lines {
                line.print();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: error: {e}", opts.scenario);
            println!(
                "{}",
                serde_json::json!({"scenario": opts.scenario, "error": e.to_string()})
            );
            ExitCode::FAILURE
        }
    }
}
