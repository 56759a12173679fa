//! Generates code for every AsyncAPI document in `data/asyncapi-corpus` that the model accepts
//! (both sides) and for the focused specs in `data/codegen`, and writes `specs.rs`, which
//! `src/lib.rs` includes: compiling this crate proves all of them compile.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ruststream_build::{Config, Error, Side};

fn documents(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            documents(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yml" || e == "yaml" || e == "json")
        {
            // Shared fragments (`common/*.yaml`) are not documents: they have no version.
            let text = std::fs::read_to_string(&path)?;
            if text.starts_with("asyncapi:") || text.contains("\nasyncapi:") {
                out.push(path);
            }
        }
    }
    Ok(())
}

fn module_name(rel: &Path) -> String {
    let mut name: String = rel
        .with_extension("")
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    name
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let corpus = manifest.join("data/asyncapi-corpus");
    let codegen = manifest.join("data/codegen");
    println!("cargo:rerun-if-changed={}", corpus.display());
    println!("cargo:rerun-if-changed={}", codegen.display());

    let mut specs = String::new();
    for (group, root) in [("corpus", &corpus), ("codegen", &codegen)] {
        let mut docs = Vec::new();
        documents(root, &mut docs)?;
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        writeln!(
            specs,
            "/// Code generated from the documents in `data/{group}`."
        )?;
        writeln!(specs, "pub mod {group} {{")?;
        for doc in docs {
            let rel = doc.strip_prefix(root)?.to_path_buf();
            let rel_text = rel.to_string_lossy().replace('\\', "/");
            let name = module_name(&rel);
            let result = Config::new()
                .root(&corpus)
                .module_name(name.clone())
                .out_dir(&out_dir)
                .compile(&doc);
            match result {
                Ok(file) => {
                    writeln!(specs, "    /// Generated from `{rel_text}`.")?;
                    writeln!(specs, "    pub mod {name} {{")?;
                    writeln!(specs, "        include!({:?});", file.display().to_string())?;
                    writeln!(specs, "    }}")?;
                    accepted.push(rel_text);
                }
                Err(Error::Spec(_)) => rejected.push(rel_text),
                Err(other) => return Err(other.into()),
            }
        }
        writeln!(specs, "    /// Documents that generated code.")?;
        writeln!(specs, "    pub const ACCEPTED: &[&str] = &{accepted:?};")?;
        writeln!(specs, "    /// Documents the model rejected.")?;
        writeln!(specs, "    pub const REJECTED: &[&str] = &{rejected:?};")?;
        writeln!(specs, "}}")?;
    }
    // A sample of the AsyncAPI tools' own documents (recursive schemas across files, a
    // reference along a pointer through another file, a multi-file project under the default
    // root, oneOf messages, a large real-world spec), both sides; the whole set is generated
    // and parsed by ruststream-build's tests.
    let tooling = manifest.join("data/asyncapi-tooling-fixtures");
    writeln!(
        specs,
        "/// Code generated from a sample of `data/asyncapi-tooling-fixtures`."
    )?;
    writeln!(specs, "pub mod tooling {{")?;
    for rel in [
        "asyncapi+parser-js/test/good/circular-refs.yaml",
        "asyncapi+generator/packages/templates/clients/websocket/test/__fixtures__/asyncapi-hoppscotch-client.yml",
        "asyncapi+bundler/example/example-data/social-media/comments-service/main.yaml",
        "asyncapi+modelina/test/processors/AsyncAPIInputProcessor/operation_oneof1.json",
        "asyncapi+java-spring-cloud-stream-template/test/mocks/solace-point-of-sale-system.json",
    ] {
        let name = module_name(Path::new(rel.rsplit('/').next().unwrap_or(rel)));
        let file = Config::new()
            .module_name(name.clone())
            .out_dir(&out_dir)
            .compile(tooling.join(rel))?;
        writeln!(specs, "    /// Generated from `{rel}`.")?;
        writeln!(specs, "    pub mod {name} {{")?;
        writeln!(specs, "        include!({:?});", file.display().to_string())?;
        writeln!(specs, "    }}")?;
    }
    writeln!(specs, "}}")?;
    // Each side on its own compiles too (no item of one side is needed by the other).
    writeln!(
        specs,
        "/// `data/codegen/service.yaml` generated one side at a time."
    )?;
    writeln!(specs, "pub mod sides {{")?;
    for (name, side) in [
        ("app_only", Side::Application),
        ("client_only", Side::Client),
    ] {
        let file = Config::new()
            .side(side)
            .module_name(name)
            .out_dir(&out_dir)
            .compile(codegen.join("service.yaml"))?;
        writeln!(specs, "    /// Generated with `Side::{side:?}`.")?;
        writeln!(specs, "    pub mod {name} {{")?;
        writeln!(specs, "        include!({:?});", file.display().to_string())?;
        writeln!(specs, "    }}")?;
    }
    // Validation turned off, and skipped for one message (tests/tests/validation.rs).
    for (name, config) in [
        ("validation_off", Config::new().validate(false)),
        (
            "validation_skipped",
            Config::new().skip_validation("payment"),
        ),
    ] {
        let file = config
            .module_name(name)
            .out_dir(&out_dir)
            .compile(codegen.join("validation.yaml"))?;
        writeln!(specs, "    /// `data/codegen/validation.yaml`, {name}.")?;
        writeln!(specs, "    pub mod {name} {{")?;
        writeln!(specs, "        include!({:?});", file.display().to_string())?;
        writeln!(specs, "    }}")?;
    }
    writeln!(specs, "}}")?;
    std::fs::write(out_dir.join("specs.rs"), specs)?;
    Ok(())
}
