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
    /// Connect to the server of this name in the AsyncAPI document (its URL from `host`,
    /// `pathname` and the variables' defaults).
    #[arg(long, global = true, env = "RUSTSTREAM_SERVER")]
    pub server: Option<String>,
    /// A value for a variable of the chosen server, `name=value` (repeatable).
    #[arg(long = "server-var", global = true, value_name = "NAME=VALUE")]
    pub server_vars: Vec<String>,
    /// Connect to this broker URL (overrides `--server`'s URL).
    #[arg(
        long,
        global = true,
        env = "RUSTSTREAM_BROKER_URL",
        hide_env_values = true
    )]
    pub broker_url: Option<String>,
}

/// The broker server the command line chose: `--broker-url`, or `--server` from the
/// document. `Debug` hides the URL's password.
#[derive(Clone, PartialEq, Eq)]
pub struct ChosenServer {
    /// The document's server name (`None` for a bare `--broker-url`).
    pub name: Option<String>,
    /// The URL to connect to, for a broker crate's `Config::from_url`.
    pub url: String,
}

impl std::fmt::Debug for ChosenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChosenServer")
            .field("name", &self.name)
            .field("url", &crate::broker::url::redact(&self.url))
            .finish()
    }
}

impl ChosenServer {
    /// The URL's scheme (`amqp`, `mqtt`, `nats`, `redis`, …), lower-case; empty without `://`.
    pub fn scheme(&self) -> String {
        self.url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

impl Cli {
    /// The server chosen by `--broker-url` (first) or `--server` (looked up in `servers`, the
    /// generated `SERVERS`, with `--server-var` values over the defaults); `None` when the
    /// command line names neither.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for an unknown server or variable, or a
    /// `--server-var` without `=`.
    pub fn chosen_server(
        &self,
        servers: &[crate::broker::url::ServerSpec],
    ) -> crate::Result<Option<ChosenServer>> {
        let mut values = Vec::new();
        for pair in &self.server_vars {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(crate::Error::Config(format!(
                    "--server-var `{pair}`: expected NAME=VALUE"
                )));
            };
            values.push((name, value));
        }
        if let Some(url) = &self.broker_url {
            return Ok(Some(ChosenServer {
                name: self.server.clone(),
                url: url.clone(),
            }));
        }
        let Some(name) = &self.server else {
            if !values.is_empty() {
                return Err(crate::Error::Config(
                    "--server-var needs --server".to_owned(),
                ));
            }
            return Ok(None);
        };
        let server = crate::broker::url::ServerSpec::find(servers, name)?;
        Ok(Some(ChosenServer {
            name: Some(name.clone()),
            url: server.url(&values)?,
        }))
    }
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
    /// Serve the document as an HTML page (at `/`, with `/asyncapi.json` and `/asyncapi.yaml`)
    /// until Ctrl-C.
    Serve {
        /// Listen on this address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
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

type Reload =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The filter handle of the subscriber [`init_tracing`] installed with its `default` filter.
static DEFAULT_FILTER: std::sync::OnceLock<Reload> = std::sync::OnceLock::new();

/// Install a `tracing` subscriber writing to stderr (coloured only on a terminal), filtered
/// by `filter`, else `RUST_LOG`, else `default`. Does nothing if one is already installed.
pub fn init_tracing(filter: Option<&str>, default: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let chosen = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok());
    let defaulted = chosen.is_none();
    let (filter, handle) =
        tracing_subscriber::reload::Layer::new(chosen.unwrap_or_else(|| EnvFilter::new(default)));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok()
        && defaulted
    {
        let _ = DEFAULT_FILTER.set(handle);
    }
}

/// Lower the default log filter of [`init_tracing`] to `warn` (for one-shot commands such as
/// a demo); a filter from `--log` or `RUST_LOG` stays as it is.
pub(crate) fn quiet_default_filter() {
    if let Some(handle) = DEFAULT_FILTER.get() {
        let _ = handle.modify(|f| *f = tracing_subscriber::EnvFilter::new("warn"));
    }
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
        let cli = Cli::try_parse_from(["svc", "run", "--server", "p", "--server-var", "port=8883"])
            .unwrap();
        assert_eq!(cli.server.as_deref(), Some("p"));
        assert!(Cli::try_parse_from(["svc", "asyncapi", "gen", "--format", "xml"]).is_err());
    }

    #[test]
    fn chooses_the_server_by_name_or_url() {
        use crate::broker::url::ServerSpec;
        const SERVERS: &[ServerSpec] = &[ServerSpec::new(
            "production",
            "mqtt",
            "broker:{port}",
            "",
            &[("port", "1883")],
        )];
        let choose = |args: &[&str]| {
            let mut argv = vec!["svc"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).unwrap().chosen_server(SERVERS)
        };
        assert_eq!(choose(&[]).unwrap(), None);
        let chosen = choose(&["--server", "production"]).unwrap().unwrap();
        assert_eq!(
            (
                chosen.name.as_deref(),
                chosen.url.as_str(),
                chosen.scheme().as_str()
            ),
            (Some("production"), "mqtt://broker:1883", "mqtt")
        );
        let chosen = choose(&["run", "--server", "production", "--server-var", "port=8883"]);
        assert_eq!(chosen.unwrap().unwrap().url, "mqtt://broker:8883");
        let chosen = choose(&[
            "--server",
            "production",
            "--broker-url",
            "mqtt://u:hunter2@h",
        ]);
        let chosen = chosen.unwrap().unwrap();
        assert_eq!(chosen.url, "mqtt://u:hunter2@h");
        assert!(!format!("{chosen:?}").contains("hunter2"));
        for (args, part) in [
            (&["--server", "staging"][..], "lists: production"),
            (
                &["--server", "production", "--server-var", "port"][..],
                "NAME=VALUE",
            ),
            (
                &["--server", "production", "--server-var", "x=1"][..],
                "no variable `x`",
            ),
            (&["--server-var", "port=1"][..], "needs --server"),
        ] {
            let e = choose(args).unwrap_err().to_string();
            assert!(e.contains(part), "{args:?}: {e}");
        }
    }
}
