//! Hostile AsyncAPI documents through the code generator, end to end: each one either
//! generates code that compiles (proved by `cargo check` on a scratch crate that includes the
//! generated code with `#![deny(warnings)]`) or fails with a diagnostic naming the file and the
//! place — never a panic, a hang (every step runs under a timeout) or unbounded memory.
//!
//! The loader's own robustness (alias bombs, deep nesting, mutations) is tested in
//! `asyncapi/tests/robustness.rs`; this file checks what reaches the user of `ruststream-build`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ruststream_build::{Config, Error};

/// Longest any single load/generate may take (debug build, shared CPU).
const STEP_LIMIT: Duration = Duration::from_secs(30);

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/hostile")
        .join(name)
}

/// Run `f` on its own thread; fail the test if it panics or takes longer than `limit`.
fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(what.to_owned())
        .stack_size(8 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    match rx.recv_timeout(limit) {
        Ok(v) => {
            handle.join().expect("thread ended");
            v
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let e = handle
                .join()
                .expect_err("a thread that sent nothing panicked");
            panic!("{what}: panicked: {e:?}")
        }
    }
}

fn generate(path: &Path, config: Config) -> Result<String, Error> {
    let path = path.to_path_buf();
    let what = path.display().to_string();
    bounded(&what, STEP_LIMIT, move || {
        config.emit_rerun_if_changed(false).generate_string(&path)
    })
}

/// Peak resident memory of this process (VmHWM), in MiB; `None` off Linux.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The generator must refuse `path` with an error in `file` whose message contains one of
/// `words`; with `located`, the error also names a line or a JSON pointer (whole-file errors
/// such as "too large" have neither).
fn assert_refused(
    path: &Path,
    config: Config,
    file: &Path,
    words: &[&str],
    located: bool,
) -> String {
    let err = match generate(path, config) {
        Ok(code) => panic!(
            "{} generated {} bytes of code; expected a diagnostic",
            path.display(),
            code.len()
        ),
        Err(e) => e,
    };
    let Error::Spec(diags) = &err else {
        panic!("{}: expected a spec diagnostic, got {err}", path.display())
    };
    let text = err.to_string();
    let hit = diags.errors().find(|d| {
        let lower = d.message.to_lowercase();
        words.iter().any(|w| lower.contains(w))
    });
    let Some(d) = hit else {
        panic!(
            "{}: no error mentions any of {words:?}:\n{text}",
            path.display()
        )
    };
    assert_eq!(d.file, file, "diagnostic names the file:\n{text}");
    if located {
        assert!(
            d.line.is_some() || !d.pointer.is_empty(),
            "diagnostic names a line or a JSON pointer:\n{text}"
        );
    }
    assert!(
        text.contains(&file.display().to_string()),
        "rendered diagnostics name the file:\n{text}"
    );
    text
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ruststream-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The target directory this test binary was built in (`<target>/debug/deps/<exe>`).
fn target_root() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::temp_dir().join("ruststream-hostile-target"))
}

/// Compile `modules` (name, generated code) in a scratch crate that depends on the workspace's
/// `ruststream` by path, with the workspace's lock file, offline; fail with the compiler's
/// output when it does not compile.
fn assert_compiles(modules: &[(String, String)]) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let dir = scratch_dir("crate");
    std::fs::create_dir_all(dir.join("src")).expect("src dir");
    let manifest = format!(
        r#"[package]
name = "hostile-generated"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
ruststream = {{ path = {ruststream:?} }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
futures-core = "0.3"

[workspace]
"#,
        ruststream = workspace.join("ruststream").display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("manifest");
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).expect("lock file");
    let mut lib = String::from(
        "//! Generated from hostile documents.\n#![deny(warnings, missing_docs)]\n#![forbid(unsafe_code)]\n",
    );
    for (name, code) in modules {
        let file = format!("{name}.rs");
        std::fs::write(dir.join("src").join(&file), code).expect("module");
        writeln!(
            lib,
            "/// Generated.\npub mod {name} {{ include!({file:?}); }}"
        )
        .expect("write");
    }
    std::fs::write(dir.join("src/lib.rs"), lib).expect("lib.rs");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut child = Command::new(cargo)
        .args(["check", "--offline", "--quiet", "--lib"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_root().join("hostile-specs"))
        .env_remove("RUSTFLAGS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo runs");
    // A cold build of ruststream and its dependencies takes a while on a shared machine.
    let limit = Duration::from_secs(600);
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("cargo check of the generated code took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "generated code does not compile (scratch crate in {}):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn deep_schema(depth: usize) -> String {
    let mut s = String::from(
        "asyncapi: 3.0.0\ninfo: {title: Deep, version: '1'}\nchannels:\n  deep:\n    address: deep\n    messages:\n      deep:\n        payload:\n          $ref: '#/components/schemas/Deep'\noperations:\n  onDeep:\n    action: receive\n    channel:\n      $ref: '#/channels/deep'\ncomponents:\n  schemas:\n    Deep:\n",
    );
    for i in 0..depth {
        let pad = "  ".repeat(i * 2 + 3);
        writeln!(s, "{pad}type: object\n{pad}properties:\n{pad}  p{i}:").expect("write");
    }
    writeln!(s, "{}type: string", "  ".repeat(depth * 2 + 3)).expect("write");
    s
}

fn huge_enum(n: usize) -> String {
    let mut s = String::from(
        "asyncapi: 3.0.0\ninfo: {title: Huge enum, version: '1'}\nchannels:\n  e:\n    address: e\n    messages:\n      e:\n        payload:\n          $ref: '#/components/schemas/Big'\noperations:\n  onE:\n    action: receive\n    channel:\n      $ref: '#/channels/e'\ncomponents:\n  schemas:\n    Big:\n      type: string\n      enum:\n",
    );
    for i in 0..n {
        // Every tenth value collides with its neighbour after case conversion.
        let v = if i % 10 == 9 {
            format!("VALUE-{}", i - 1)
        } else {
            format!("value_{i}")
        };
        writeln!(s, "        - '{v}'").expect("write");
    }
    s
}

#[test]
fn hostile_but_valid_documents_generate_code_that_compiles() {
    let dir = scratch_dir("valid");
    // 60 schema levels are 120+ YAML levels, near the YAML parser's recursion limit (128);
    // 200 levels are refused with a located error (see `schemas_nested_200_deep_are_...`).
    let deep = dir.join("deep.yaml");
    std::fs::write(&deep, deep_schema(60)).expect("deep");
    let big_enum = dir.join("enum.yaml");
    std::fs::write(&big_enum, huge_enum(5_000)).expect("enum");

    let mut modules = Vec::new();
    for (name, path) in [
        ("keywords", data("keywords.yaml")),
        ("injection", data("injection.yaml")),
        ("deep", deep),
        ("big_enum", big_enum),
    ] {
        let code =
            generate(&path, Config::new()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        modules.push((name.to_owned(), code));
    }

    // Text from descriptions must stay inside doc comments and string literals: outside
    // them, the injected markers must not appear.
    let (_, injection) = &modules[1];
    let mut in_fence = false;
    for (n, line) in injection.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("///") || t.starts_with("//!") {
            let doc = t.trim_start_matches('/').trim_start_matches('!').trim();
            if doc.starts_with("```") || doc.starts_with("~~~") {
                // Only `text` fences may open: any other would be compiled as a doctest.
                assert!(
                    in_fence || doc == "```text",
                    "line {}: a description opened a code block (a doctest): {line}",
                    n + 1
                );
                in_fence = !in_fence;
            }
            continue;
        }
        for marker in [
            "fn injected",
            "std::process::exit",
            "impl Drop for X",
            "assert!(false)",
        ] {
            let outside_strings = !t.contains('"');
            assert!(
                !(outside_strings && t.contains(marker)),
                "line {}: `{marker}` escaped into code: {line}",
                n + 1
            );
        }
    }
    let total: usize = modules.iter().map(|(_, c)| c.len()).sum();
    eprintln!("compiling {total} bytes of generated code");
    assert_compiles(&modules);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn schemas_nested_200_deep_are_refused_with_a_located_error() {
    let dir = scratch_dir("deep200");
    let path = dir.join("deep.yaml");
    std::fs::write(&path, deep_schema(200)).expect("deep");
    let text = assert_refused(
        &path,
        Config::new(),
        &path,
        &["recursion", "deep", "nesting"],
        false,
    );
    assert!(text.contains("line "), "names the line:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ref_cycles_are_located_errors() {
    let path = data("ref-cycle.yaml");
    let text = assert_refused(&path, Config::new(), &path, &["cycle", "circular"], true);
    eprintln!("{text}");
}

#[test]
fn schema_only_ref_cycles_are_located_errors() {
    let path = data("schema-ref-cycle.yaml");
    let text = assert_refused(&path, Config::new(), &path, &["cycle", "circular"], true);
    eprintln!("{text}");
}

#[test]
fn refs_outside_the_root_are_refused_and_never_read() {
    let path = data("ref-outside-root.yaml");
    let text = assert_refused(
        &path,
        Config::new(),
        &path,
        &["outside", "root", "absolute", "not allowed", "refused"],
        true,
    );
    // `/etc/passwd` starts with `root:x:0:0`; its content must not leak into diagnostics.
    assert!(!text.contains("root:x:0:0"), "file content leaked:\n{text}");
    assert!(!text.contains("/bin/bash"), "file content leaked:\n{text}");
    // Every one of the four references is reported, not only the first.
    let errors = match generate(&path, Config::new()) {
        Err(Error::Spec(d)) => d.errors().count(),
        other => panic!("expected diagnostics, got {other:?}"),
    };
    assert!(errors >= 4, "each hostile ref gets its error:\n{text}");
}

#[test]
fn network_refs_are_refused_by_default() {
    let path = data("ref-network.yaml");
    let text = assert_refused(&path, Config::new(), &path, &["network", "http"], true);
    assert!(
        text.contains("169.254.169.254"),
        "names the reference:\n{text}"
    );
}

#[test]
fn yaml_alias_bomb_is_refused_quickly_with_bounded_memory() {
    let path = data("alias-bomb.yaml");
    let start = Instant::now();
    let text = assert_refused(
        &path,
        Config::new(),
        &path,
        &["yaml", "alias", "recursion"],
        false,
    );
    assert!(start.elapsed() < STEP_LIMIT, "{text}");
    if let Some(peak) = peak_rss_mib() {
        assert!(peak < 1_024, "peak RSS {peak} MiB after the alias bomb");
    }
}

#[test]
fn a_50_mb_document_is_refused_with_a_clear_error_and_bounded_memory() {
    let dir = scratch_dir("big");
    let path = dir.join("big.yaml");
    {
        // A valid document padded with one schema per line until it passes 50 MB.
        let mut s = String::with_capacity(51 << 20);
        s.push_str("asyncapi: 3.0.0\ninfo: {title: Big, version: '1'}\ncomponents:\n  schemas:\n");
        let mut i = 0u64;
        while s.len() < 50 << 20 {
            writeln!(
                s,
                "    S{i}: {{type: object, description: 'padding padding padding padding padding', properties: {{a: {{type: string}}}}}}"
            )
            .expect("write");
            i += 1;
        }
        std::fs::write(&path, s).expect("big document");
    }
    let start = Instant::now();
    let text = assert_refused(
        &path,
        Config::new(),
        &path,
        &["larger", "size", "too large", "bytes"],
        false,
    );
    eprintln!("refused in {:?}: {text}", start.elapsed());
    if let Some(peak) = peak_rss_mib() {
        assert!(peak < 1_024, "peak RSS {peak} MiB after a 50 MB document");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
