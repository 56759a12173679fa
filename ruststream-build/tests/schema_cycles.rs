//! Property test (seeded, no extra dependency): random schema graphs with cycles through every
//! kind of edge (`$ref`, `properties`, `items`, tuple `items`, `additionalProperties`,
//! `allOf`/`oneOf`/`anyOf`, `nullable`, a schema in another file that refers back) must load and
//! generate without overflowing the stack, and the generated code must parse with `syn`.
//!
//! Each case runs on a thread with a small (1 MiB) stack, so unbounded recursion fails here
//! rather than only on bigger documents. `RUSTSTREAM_CYCLE_CASES` changes the number of cases.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ruststream_build::{Config, Side};

/// A small deterministic generator (xorshift64*), so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Where a generated schema lives.
#[derive(Clone, Copy)]
enum File {
    Main,
    Other,
}

struct Graph {
    main: usize,
    other: usize,
}

impl Graph {
    /// A `$ref` to a random schema of either file, written from `from`.
    fn reference(&self, rng: &mut Rng, from: File) -> String {
        let in_other = self.other > 0 && rng.below(3) == 0;
        match (from, in_other) {
            (File::Main, false) => format!("'#/components/schemas/S{}'", rng.below(self.main)),
            (File::Main, true) => format!("'other.yaml#/O{}'", rng.below(self.other)),
            (File::Other, false) => {
                format!("'main.yaml#/components/schemas/S{}'", rng.below(self.main))
            }
            (File::Other, true) => format!("'#/O{}'", rng.below(self.other)),
        }
    }

    /// A random schema as a YAML flow mapping, at most `depth` levels of nesting.
    fn schema(&self, rng: &mut Rng, from: File, depth: usize) -> String {
        let choice = if depth == 0 {
            rng.below(3)
        } else {
            rng.below(12)
        };
        let inner = |rng: &mut Rng| self.schema(rng, from, depth.saturating_sub(1));
        match choice {
            0 => format!("{{ $ref: {} }}", self.reference(rng, from)),
            1 => "{ type: string }".to_string(),
            2 => "{ type: integer, format: int32 }".to_string(),
            3 => {
                let a = inner(rng);
                let b = inner(rng);
                let required = if rng.below(2) == 0 { "[a]" } else { "[]" };
                format!(
                    "{{ type: object, required: {required}, properties: {{ a: {a}, b: {b} }} }}"
                )
            }
            4 => format!("{{ type: array, items: {} }}", inner(rng)),
            5 => format!("{{ type: array, items: [{}, {}] }}", inner(rng), inner(rng)),
            6 => format!("{{ type: object, additionalProperties: {} }}", inner(rng)),
            7 => format!("{{ allOf: [{}, {}] }}", inner(rng), inner(rng)),
            8 => format!("{{ oneOf: [{}, {}] }}", inner(rng), inner(rng)),
            9 => format!("{{ anyOf: [{}, {{ type: 'null' }}] }}", inner(rng)),
            10 => format!(
                "{{ type: object, nullable: true, properties: {{ n: {} }} }}",
                inner(rng)
            ),
            _ => format!("{{ allOf: [{}] }}", inner(rng)),
        }
    }
}

fn write_case(dir: &Path, seed: u64) -> PathBuf {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let graph = Graph {
        main: 1 + rng.below(5),
        other: rng.below(3),
    };
    let mut main = String::from(
        "asyncapi: 3.0.0\ninfo: { title: Cycles, version: 1.0.0 }\nchannels:\n  c:\n    address: c\n    messages:\n",
    );
    for i in 0..graph.main.min(2) {
        let _ = writeln!(
            main,
            "      m{i}:\n        payload: {{ $ref: '#/components/schemas/S{i}' }}"
        );
    }
    main.push_str("operations:\n  onC:\n    action: receive\n    channel: { $ref: '#/channels/c' }\n  sendC:\n    action: send\n    channel: { $ref: '#/channels/c' }\ncomponents:\n  schemas:\n");
    for i in 0..graph.main {
        let s = graph.schema(&mut rng, File::Main, 3);
        let _ = writeln!(main, "    S{i}: {s}");
    }
    let mut other = String::new();
    for i in 0..graph.other {
        let s = graph.schema(&mut rng, File::Other, 3);
        let _ = writeln!(other, "O{i}: {s}");
    }
    if other.is_empty() {
        other.push_str("{}\n");
    }
    std::fs::write(dir.join("main.yaml"), main).expect("write main.yaml");
    std::fs::write(dir.join("other.yaml"), other).expect("write other.yaml");
    dir.join("main.yaml")
}

/// One case: `Ok(true)` when generated (and parsed), `Ok(false)` when refused with diagnostics.
fn run_case(spec: PathBuf, root: PathBuf) -> Result<bool, String> {
    // `check`: load and validate.
    let loaded = asyncapi::load(
        &spec,
        &asyncapi::LoadOptions {
            root: Some(root.clone()),
            ..Default::default()
        },
    );
    let generated = Config::new()
        .side(Side::Both)
        .root(root)
        .emit_rerun_if_changed(false)
        .generate(&spec);
    match (loaded, generated) {
        (Ok(_), Ok(g)) => syn::parse_file(&g.code)
            .map(|_| true)
            .map_err(|e| format!("generated code does not parse: {e}\n{}", g.code)),
        (Err(_), Err(ruststream_build::Error::Spec(_))) => Ok(false),
        (Ok(_), Err(e)) => Err(format!("loads but does not generate: {e}")),
        (Err(d), Ok(_)) => Err(format!("generates but does not load: {d}")),
        (Err(_), Err(e)) => Err(format!("unexpected error: {e}")),
    }
}

#[test]
fn random_cyclic_schema_graphs_terminate_and_parse() {
    let cases: u64 = std::env::var("RUSTSTREAM_CYCLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let base = std::env::temp_dir().join(format!("ruststream-cycles-{}", std::process::id()));
    let mut generated = 0;
    for seed in 0..cases {
        let dir = base.join(seed.to_string());
        std::fs::create_dir_all(&dir).expect("temp dir");
        let spec = write_case(&dir, seed);
        let root = dir.clone();
        let outcome = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || run_case(spec, root))
            .expect("spawn")
            .join();
        match outcome {
            Ok(Ok(true)) => generated += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => panic!("seed {seed} ({}): {e}", dir.display()),
            Err(_) => panic!("seed {seed} ({}): panicked", dir.display()),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&base);
    // Most graphs are valid documents (only pure `$ref` cycles are refused).
    assert!(
        generated * 2 > cases,
        "only {generated} of {cases} random documents generated"
    );
}

/// Schemas nested far deeper than any real one generate on a test thread's stack (past
/// `MAX_TYPE_DEPTH` they become `serde_json::Value`); deeper than the YAML nesting limit they
/// are refused. Neither crashes.
#[test]
fn deeply_nested_schemas_generate_on_a_small_stack() {
    for levels in [60, 200] {
        let mut text = String::from(
            "asyncapi: 3.0.0\ninfo: {title: Deep, version: '1'}\nchannels:\n  c:\n    address: c\n    messages:\n      m:\n        payload: {$ref: '#/components/schemas/s'}\noperations:\n  onC:\n    action: receive\n    channel: {$ref: '#/channels/c'}\ncomponents:\n  schemas:\n    s:\n",
        );
        for depth in 0..levels {
            let pad = "  ".repeat(depth * 2 + 3);
            text.push_str(&format!("{pad}type: object\n{pad}properties:\n{pad}  p:\n"));
        }
        text.push_str(&format!("{}type: string\n", "  ".repeat(levels * 2 + 3)));
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                Config::new()
                    .emit_rerun_if_changed(false)
                    .generate_str(&text, std::path::Path::new("/nonexistent/deep.yaml"))
                    .map(|g| g.code.len())
                    .map_err(|e| e.to_string())
            })
            .expect("spawn")
            .join()
            .expect("no overflow, no panic");
        if levels == 60 {
            let len = outcome.unwrap_or_else(|e| panic!("60 levels: {e}"));
            assert!(len > 0);
        }
    }
}
