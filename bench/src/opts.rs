//! Command-line options (flags, with environment-variable defaults).

use std::time::Duration;

/// Usage text.
pub const USAGE: &str = "\
usage: ruststream-bench <scenario|all> [options]

scenarios: memory-pipeline nats-pipeline kafka-pipeline request-reply codegen-large slow-consumer alloc
           validate-consume (consume with schema validation on vs off)
           vs-upstream (ours vs upstream ruststream 0.7.7 vs raw, Event and Order)
           consume-only (for scripts/instructions.sh)

options (environment variable in brackets):
  --messages N     messages per pipeline round (default 1000000) [RUSTSTREAM_BENCH_MESSAGES]
  --rounds N       interleaved rounds per side, median reported (default 5, min 1) [RUSTSTREAM_BENCH_ROUNDS]
  --threads N      tokio worker threads; 1 = current-thread runtime (default 2) [RUSTSTREAM_BENCH_THREADS]
  --requests N     request-reply round trips per round (default 20000)
  --operations N   operations in the codegen-large spec (default 1000)
  --sleep-every N  slow-consumer: the handler sleeps on every N-th message (default 100)
  --sleep-us N     slow-consumer: how long it sleeps, microseconds (default 1000)
  --nats-url URL   NATS server (default nats://127.0.0.1:4222) [NATS_URL]
  --kafka HOST:PORT  Kafka bootstrap server (default 127.0.0.1:9092) [KAFKA_BOOTSTRAP]
  --side S         consume-only: framework | baseline (default framework)
  --no-work        consume-only: set up and prefill, but do not consume
  --only S         memory-pipeline, nats-pipeline, validate-consume: run one side only, framework |
                   baseline (for scripts/*instructions.sh; the other is reported as 0)
";

/// Parsed options.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Scenario name or `all`.
    pub scenario: String,
    /// `--help` was given.
    pub help: bool,
    /// Messages per pipeline round.
    pub messages: u64,
    /// Rounds per side.
    pub rounds: usize,
    /// Tokio worker threads (1 = current-thread runtime).
    pub threads: usize,
    /// Request-reply round trips per round.
    pub requests: u64,
    /// Operations in the synthetic spec.
    pub operations: usize,
    /// Slow consumer: sleep on every N-th message.
    pub sleep_every: u64,
    /// Slow consumer: sleep duration.
    pub sleep: Duration,
    /// NATS URL.
    pub nats_url: String,
    /// Kafka bootstrap servers (`--kafka`, `KAFKA_BOOTSTRAP`).
    pub kafka_bootstrap: String,
    /// consume-only: measure the baseline instead of the framework.
    pub baseline_side: bool,
    /// consume-only: do the consume work.
    pub work: bool,
    /// memory-pipeline, nats-pipeline: run only this side (`Some(true)` = baseline, `Some(false)` = framework).
    pub only: Option<bool>,
    /// The options as given, forwarded to child processes by `all`.
    pub forward: Vec<String>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Opts {
    /// Parse `args` (without the program name).
    pub fn parse(args: impl Iterator<Item = String>) -> Result<Opts, String> {
        let mut o = Opts {
            scenario: "all".into(),
            help: false,
            messages: env_or("RUSTSTREAM_BENCH_MESSAGES", 1_000_000),
            rounds: env_or("RUSTSTREAM_BENCH_ROUNDS", 5),
            threads: env_or("RUSTSTREAM_BENCH_THREADS", 2),
            requests: 20_000,
            operations: 1000,
            sleep_every: 100,
            sleep: Duration::from_micros(1000),
            nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            kafka_bootstrap: std::env::var("KAFKA_BOOTSTRAP")
                .unwrap_or_else(|_| "127.0.0.1:9092".into()),
            baseline_side: false,
            work: true,
            only: None,
            forward: Vec::new(),
        };
        let mut scenario = None;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> Result<String, String> {
                args.next().ok_or_else(|| format!("{name} needs a value"))
            };
            fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
                v.parse()
                    .map_err(|_| format!("{name}: `{v}` is not a number"))
            }
            let flag = arg.clone();
            match arg.as_str() {
                "-h" | "--help" => o.help = true,
                "--messages" | "-n" => {
                    let v = value(&flag)?;
                    o.messages = num(&flag, &v)?;
                    o.forward.extend([flag, v]);
                }
                "--rounds" => {
                    let v = value(&flag)?;
                    o.rounds = num(&flag, &v)?;
                    o.forward.extend([flag, v]);
                }
                "--threads" => {
                    let v = value(&flag)?;
                    o.threads = num(&flag, &v)?;
                    o.forward.extend([flag, v]);
                }
                "--requests" => {
                    let v = value(&flag)?;
                    o.requests = num(&flag, &v)?;
                    o.forward.extend([flag, v]);
                }
                "--operations" => {
                    let v = value(&flag)?;
                    o.operations = num(&flag, &v)?;
                    o.forward.extend([flag, v]);
                }
                "--sleep-every" => {
                    let v = value(&flag)?;
                    o.sleep_every = num(&flag, &v)?;
                    o.forward.extend([flag, v]);
                }
                "--sleep-us" => {
                    let v = value(&flag)?;
                    o.sleep = Duration::from_micros(num(&flag, &v)?);
                    o.forward.extend([flag, v]);
                }
                "--nats-url" => {
                    let v = value(&flag)?;
                    o.nats_url = v.clone();
                    o.forward.extend([flag, v]);
                }
                "--kafka" => {
                    let v = value(&flag)?;
                    o.kafka_bootstrap = v.clone();
                    o.forward.extend([flag, v]);
                }
                "--side" => {
                    let v = value(&flag)?;
                    o.baseline_side = match v.as_str() {
                        "framework" => false,
                        "baseline" => true,
                        other => {
                            return Err(format!("--side: `{other}` is not framework|baseline"));
                        }
                    };
                }
                "--no-work" => o.work = false,
                "--only" => {
                    let v = value(&flag)?;
                    o.only = Some(match v.as_str() {
                        "framework" => false,
                        "baseline" => true,
                        other => {
                            return Err(format!("--only: `{other}` is not framework|baseline"));
                        }
                    });
                }
                s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
                s => {
                    if scenario.replace(s.to_owned()).is_some() {
                        return Err("more than one scenario given".into());
                    }
                }
            }
        }
        if let Some(s) = scenario {
            o.scenario = s;
        }
        o.messages = o.messages.max(1);
        o.rounds = o.rounds.max(1);
        o.threads = o.threads.max(1);
        o.requests = o.requests.max(1);
        o.sleep_every = o.sleep_every.max(1);
        Ok(o)
    }

    /// A tokio runtime as configured by `--threads`.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        if self.threads == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.threads)
                .enable_all()
                .build()
        }
    }
}
