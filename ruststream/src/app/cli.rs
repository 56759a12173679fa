//! The command line of an app: `run`, `asyncapi gen`, and what to do with no command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// The command line every RustStream app understands.
#[derive(Debug, Clone, Parser)]
#[command(about = "A RustStream service", disable_version_flag = true)]
pub struct Cli {
    /// What to do; with none, the app runs its demo if it has one, else serves (`run`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log filter (`RUST_LOG` syntax), e.g. `info,my_service=debug`.
    #[arg(long, global = true, env = "RUSTSTREAM_LOG")]
    pub log: Option<String>,
}

/// A subcommand.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Start the service and serve until SIGINT/SIGTERM, then drain gracefully.
    Run {
        /// Serve `/metrics` and `/health` on this address (overrides the app's setting).
        #[arg(long, env = "RUSTSTREAM_METRICS_ADDR")]
        metrics_addr: Option<SocketAddr>,
    },
    /// AsyncAPI document tools.
    Asyncapi {
        /// The AsyncAPI action.
        #[command(subcommand)]
        command: AsyncapiCommand,
    },
}

/// `asyncapi` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AsyncapiCommand {
    /// Print the service's AsyncAPI 3.0.0 document (spec + hand-written routes + servers).
    Gen {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON (pretty-printed).
    Json,
}

/// Install a `tracing` subscriber writing to stderr (coloured only on a terminal), filtered
/// by `filter`, else `RUST_LOG`, else `default`. Does nothing if one is already installed.
pub fn init_tracing(filter: Option<&str>, default: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_commands() {
        let cli = Cli::try_parse_from(["svc", "asyncapi", "gen", "--format", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Asyncapi {
                command: AsyncapiCommand::Gen {
                    format: Format::Json,
                    out: None
                }
            })
        ));
        let cli = Cli::try_parse_from(["svc", "run", "--metrics-addr", "127.0.0.1:9000"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Run {
                metrics_addr: Some(_)
            })
        ));
        assert!(Cli::try_parse_from(["svc"]).unwrap().command.is_none());
        assert!(Cli::try_parse_from(["svc", "asyncapi", "gen", "--format", "xml"]).is_err());
    }
}
