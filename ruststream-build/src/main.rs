//! `ruststream-build`: generate, check, convert and serve AsyncAPI documents from the shell.

mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ruststream_build::{Config, Error, Side};

#[derive(Parser)]
#[command(
    name = "ruststream-build",
    version,
    about = "RustStream code generator for AsyncAPI documents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the Rust code generated for SPEC.
    Generate {
        /// The AsyncAPI document.
        spec: PathBuf,
        /// Which side to generate.
        #[arg(long, value_enum, default_value_t = SideArg::Both)]
        side: SideArg,
        /// Allow http(s) references.
        #[arg(long)]
        allow_network_refs: bool,
        #[command(flatten)]
        refs: RefArgs,
    },
    /// Validate SPEC against the official AsyncAPI JSON Schema of its version, then the
    /// semantic rules: exit 0 when valid (warnings printed), 1 with every diagnostic otherwise.
    Check {
        /// The AsyncAPI document.
        spec: PathBuf,
        #[command(flatten)]
        refs: RefArgs,
    },
    /// Print SPEC, resolved and normalised, as an AsyncAPI 3.x document.
    Convert {
        /// The AsyncAPI document.
        spec: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
        /// The AsyncAPI version written.
        #[arg(long, value_enum, default_value_t = Version::V3_1_0)]
        to: Version,
        #[command(flatten)]
        refs: RefArgs,
    },
    /// Serve SPEC as an HTML documentation page (with `/asyncapi.json` and `/asyncapi.yaml`)
    /// until Ctrl-C.
    Serve {
        /// The AsyncAPI document.
        spec: PathBuf,
        /// Listen on this address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        #[command(flatten)]
        refs: RefArgs,
    },
}

/// Where `$ref`s may lead.
#[derive(clap::Args)]
struct RefArgs {
    /// Folder file references may not leave (default: the nearest folder above the spec that
    /// holds a `.git` or `Cargo.toml`, else the spec's folder).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Allow file references that leave the root folder.
    #[arg(long)]
    allow_outside_root: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Version {
    #[value(name = "3.0.0")]
    V3_0_0,
    #[value(name = "3.1.0")]
    V3_1_0,
}

#[derive(Clone, Copy, ValueEnum)]
enum SideArg {
    App,
    Client,
    Both,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { spec, addr, refs } => serve_command(&spec, addr, &refs),
        Command::Generate {
            spec,
            side,
            allow_network_refs,
            refs,
        } => {
            // `--allow-outside-root`: the file system's root is the root.
            let root = refs.root.clone().or_else(|| {
                refs.allow_outside_root
                    .then(|| PathBuf::from(std::path::Component::RootDir.as_os_str()))
            });
            let side = match side {
                SideArg::App => Side::Application,
                SideArg::Client => Side::Client,
                SideArg::Both => Side::Both,
            };
            let mut config = Config::new();
            if let Some(root) = root {
                config = config.root(root);
            }
            let config = config
                .side(side)
                .allow_network_refs(allow_network_refs)
                .emit_rerun_if_changed(false);
            match config.generate(&spec) {
                Ok(generated) => {
                    for w in generated.warnings.iter() {
                        eprintln!("{w}\n");
                    }
                    print!("{}", generated.code);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Check { spec, refs } => match asyncapi::load(&spec, &load_options(&refs, false)) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    eprintln!("{w}\n");
                }
                eprintln!(
                    "{}: valid ({} warning{})",
                    spec.display(),
                    loaded.warnings.len(),
                    if loaded.warnings.len() == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(diagnostics) => {
                eprintln!("{}", cli_hints(diagnostics));
                ExitCode::FAILURE
            }
        },
        Command::Convert {
            spec,
            format,
            to,
            refs,
        } => match asyncapi::load(&spec, &load_options(&refs, false)) {
            Ok(loaded) => {
                let version = match to {
                    Version::V3_0_0 => "3.0.0",
                    Version::V3_1_0 => "3.1.0",
                };
                let text = match format {
                    Format::Yaml => asyncapi::emit::to_yaml_version(&loaded.document, version),
                    Format::Json => asyncapi::emit::to_json_version(&loaded.document, version),
                };
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
                ExitCode::SUCCESS
            }
            Err(diagnostics) => {
                eprintln!("{}", cli_hints(diagnostics));
                ExitCode::FAILURE
            }
        },
    }
}

fn serve_command(spec: &std::path::Path, addr: std::net::SocketAddr, refs: &RefArgs) -> ExitCode {
    match asyncapi::load(spec, &load_options(refs, false)) {
        Ok(loaded) => match serve::serve(&loaded.document, addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot serve on {addr}: {e}");
                ExitCode::FAILURE
            }
        },
        Err(diagnostics) => {
            eprintln!("{}", cli_hints(diagnostics));
            ExitCode::FAILURE
        }
    }
}

fn fail(error: &Error) -> ExitCode {
    match error {
        Error::Spec(d) => eprintln!(
            "error: invalid AsyncAPI document\n\n{}",
            cli_hints(d.clone())
        ),
        other => eprintln!("error: {other}"),
    }
    ExitCode::FAILURE
}

fn load_options(refs: &RefArgs, allow_network: bool) -> asyncapi::LoadOptions {
    asyncapi::LoadOptions {
        root: refs.root.clone(),
        allow_outside_root: refs.allow_outside_root,
        allow_network,
        ..Default::default()
    }
}

/// Hints name the command line's flags, not the library options.
fn cli_hints(mut diagnostics: asyncapi::Diagnostics) -> asyncapi::Diagnostics {
    for d in &mut diagnostics.0 {
        if let Some(hint) = &mut d.hint {
            *hint = hint
                .replace("set `LoadOptions::root`", "pass `--root <DIR>`")
                .replace("call `Config::root`", "pass `--root <DIR>`")
                .replace(
                    "set `LoadOptions::allow_outside_root`",
                    "pass `--allow-outside-root`",
                )
                .replace(
                    " (a folder above every file the spec references)",
                    ", or pass `--allow-outside-root`",
                )
                .replace(
                    "set `LoadOptions::allow_network`",
                    "pass `--allow-network-refs` (generate)",
                )
                .replace(
                    "call `Config::allow_network_refs(true)`",
                    "pass `--allow-network-refs`",
                );
        }
    }
    diagnostics
}
