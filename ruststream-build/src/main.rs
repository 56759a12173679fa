//! `ruststream-build`: generate, check and convert AsyncAPI documents from the shell.

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
        /// Folder file references may not leave (default: the spec's folder).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Validate SPEC: exit 0 when valid (warnings printed), 1 with every diagnostic otherwise.
    Check {
        /// The AsyncAPI document.
        spec: PathBuf,
        /// Folder file references may not leave (default: the spec's folder).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Print SPEC, resolved and normalised, as an AsyncAPI 3.0.0 document.
    Convert {
        /// The AsyncAPI document.
        spec: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
        /// Folder file references may not leave (default: the spec's folder).
        #[arg(long)]
        root: Option<PathBuf>,
    },
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
        Command::Generate {
            spec,
            side,
            allow_network_refs,
            root,
        } => {
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
        Command::Check { spec, root } => match asyncapi::load(&spec, &load_options(root)) {
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
                eprintln!("{diagnostics}");
                ExitCode::FAILURE
            }
        },
        Command::Convert { spec, format, root } => match asyncapi::load(&spec, &load_options(root))
        {
            Ok(loaded) => {
                let text = match format {
                    Format::Yaml => asyncapi::emit::to_yaml(&loaded.document),
                    Format::Json => asyncapi::emit::to_json(&loaded.document),
                };
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
                ExitCode::SUCCESS
            }
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                ExitCode::FAILURE
            }
        },
    }
}

fn fail(error: &Error) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}

fn load_options(root: Option<PathBuf>) -> asyncapi::LoadOptions {
    asyncapi::LoadOptions {
        root,
        ..Default::default()
    }
}
