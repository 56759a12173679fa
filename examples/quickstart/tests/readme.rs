//! The README's spec-first quick start works as copied: its `Cargo.toml` lines, YAML,
//! `build.rs` and `main.rs` blocks, taken from `README.md` itself, make a fresh crate outside
//! the workspace (path dependencies on this checkout, the workspace's `target/`), which builds
//! with `-D warnings` and runs: `asyncapi gen` prints the document, and with no command the
//! service says what it serves and stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fenced blocks (language, text) of the README's quick start section.
fn quick_start_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(checkout().join("README.md")).unwrap();
    let section = readme
        .split("## Spec-first quick start")
        .nth(1)
        .expect("README has a quick start")
        .split("\n## ")
        .next()
        .unwrap();
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((lang.to_owned(), body.join("\n") + "\n"));
        }
    }
    blocks
}

fn block<'a>(blocks: &'a [(String, String)], lang: &str, first_line: &str) -> &'a str {
    blocks
        .iter()
        .find(|(l, text)| l == lang && text.starts_with(first_line))
        .map(|(_, text)| text.as_str())
        .unwrap_or_else(|| panic!("README quick start has no ```{lang} block `{first_line}`"))
}

/// The README's `Cargo.toml` lines with the two crates pointing at this checkout.
fn manifest(readme_toml: &str) -> String {
    let root = checkout().canonicalize().unwrap();
    let root = root.display();
    let mut deps = String::new();
    for line in readme_toml.lines() {
        let line = if line.starts_with("ruststream = { version = \"0.1\",") {
            line.replacen(
                "version = \"0.1\"",
                &format!("path = \"{root}/ruststream\""),
                1,
            )
        } else if line == "ruststream-build = \"0.1\"" {
            format!("ruststream-build = {{ path = \"{root}/ruststream-build\" }}")
        } else {
            assert!(
                line.is_empty() || line.starts_with('[') || line.starts_with('#'),
                "an unexpected dependency line in the README: {line}"
            );
            line.to_owned()
        };
        deps.push_str(&line);
        deps.push('\n');
    }
    format!(
        "[package]\nname = \"readme-quickstart\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[workspace]\n\n{deps}"
    )
}

#[test]
fn the_readme_quick_start_builds_without_warnings_and_runs() {
    let blocks = quick_start_blocks();
    let dir = std::env::temp_dir().join(format!("ruststream-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        manifest(block(&blocks, "toml", "# Cargo.toml")),
    )
    .unwrap();
    std::fs::write(
        dir.join("asyncapi.yaml"),
        block(&blocks, "yaml", "# asyncapi.yaml"),
    )
    .unwrap();
    std::fs::write(dir.join("build.rs"), block(&blocks, "rust", "// build.rs")).unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        block(&blocks, "rust", "// src/main.rs"),
    )
    .unwrap();
    // The workspace's lock pins the versions its `target/` was built with (no network).
    std::fs::copy(checkout().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // `-D warnings` on the crate that includes the generated code (its dependencies keep
    // their usual flags, so their builds are shared with the workspace's).
    let build = Command::new(&cargo)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "rustc",
            "--offline",
            "--bin",
            "readme-quickstart",
            "--",
            "-D",
            "warnings",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(
        build.status.success(),
        "the quick start does not build:\n{stderr}"
    );
    assert!(!stderr.contains("warning"), "warnings:\n{stderr}");
    let bin = target.join("debug/readme-quickstart");

    let document = Command::new(&bin)
        .args(["asyncapi", "gen", "--format", "json"])
        .output()
        .unwrap();
    assert!(document.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&document.stdout).unwrap();
    assert_eq!(doc["info"]["title"], "Quickstart");
    assert_eq!(doc["operations"]["onGreet"]["action"], "receive");

    // With no command it serves, and says so at the default log level.
    let mut child = Command::new(&bin)
        .env_remove("RUST_LOG")
        .env_remove("RUSTSTREAM_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    while !log.contains("Ctrl-C") {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => log.push_str(&(line + "\n")),
            Err(_) => {
                let _ = child.kill();
                panic!("the service did not say it serves:\n{log}");
            }
        }
    }
    for part in ["started", "Quickstart", "1.0.0", "onGreet"] {
        assert!(log.contains(part), "`{part}` missing from:\n{log}");
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        log.push_str(&(line + "\n"));
    }
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("stopped"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
