//! A short, deterministic run of the fuzz targets (`fuzz/`, run for real with cargo-fuzz) for
//! CI: seeds plus hostile inputs, then a few thousand seeded mutations of them, through the
//! AsyncAPI loader and every codec's decode. A panic fails the test; a stack overflow or an
//! allocation failure aborts it.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::Path;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\x00\xff\x7f\x80{}[]\":,-&*!|>#\n 0e9\xc0\xf6\x91\x81\xa1";

fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                out.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(16)).min(len);
                out.drain(i..j);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(32)).min(len);
                let chunk = out[i..j].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, chunk);
            }
            5 => out.truncate(rng.below(len + 1)),
            _ => {
                let other = &others[rng.below(others.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let j = (i + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    out.splice(at..at, other[i..j].iter().copied());
                }
            }
        }
    }
    out
}

fn run(name: &str, target: fn(&[u8]), seeds: Vec<Vec<u8>>, iterations: usize) {
    let mut rng = Rng(0x5eed_0000 ^ name.len() as u64);
    for seed in &seeds {
        target(seed);
    }
    // Mutate the small seeds only (the huge hostile ones ran once above), to stay fast in CI.
    let small: Vec<Vec<u8>> = seeds.into_iter().filter(|s| s.len() <= 4096).collect();
    assert!(!small.is_empty(), "{name}: no small seeds");
    for i in 0..iterations {
        let input = mutate(&mut rng, &small[i % small.len()], &small);
        target(&input);
    }
}

fn sample() -> targets::Sample {
    serde_json::from_str(
        r#"{"id":-7,"name":"sensor","ts":1764000000000,"amount":2.5,"tags":["a","b"],
            "status":"active","shape":{"kind":"square","side":3.0},"value":[1.0,"x",[2.0]],
            "extra":{"k":{"nested":[null,true]}},"child":{"id":1,"name":"c"}}"#,
    )
    .expect("valid sample")
}

fn encoded(content_type: &str) -> Vec<Vec<u8>> {
    let s = sample();
    vec![
        ruststream::codec::encode(content_type, &s)
            .expect("encodes")
            .to_vec(),
        ruststream::codec::encode(content_type, &serde_json::json!([1, "two", {"three": 3.0}]))
            .expect("encodes")
            .to_vec(),
        ruststream::codec::encode(content_type, &"text")
            .expect("encodes")
            .to_vec(),
    ]
}

/// Nesting far deeper than any decoder's recursion limit.
fn deep(open: &[u8], close: &[u8], depth: usize) -> Vec<u8> {
    let mut v = open.repeat(depth);
    v.extend(close.repeat(depth));
    v
}

#[test]
fn json_never_panics() {
    let mut json = encoded("application/json");
    json.push(deep(b"[", b"]", 100_000));
    json.push(deep(b"{\"a\":", b"}", 50_000));
    json.push(b"{\"id\":1e999,\"name\":\"\\ud800\"}".to_vec());
    json.push(b"18446744073709551616".to_vec());
    run("json", targets::json, json, 4000);
}

#[test]
fn msgpack_never_panics() {
    let mut msgpack = encoded("application/msgpack");
    msgpack.push(deep(b"\x91", b"\xc0", 100_000).split_off(99_999));
    msgpack.push([b"\x91".repeat(100_000), vec![0xc0]].concat());
    msgpack.push(b"\xdd\xff\xff\xff\xff".to_vec()); // array32 claiming 4G elements
    msgpack.push(b"\xdb\xff\xff\xff\xff".to_vec()); // str32 claiming 4 GB
    run("msgpack", targets::msgpack, msgpack, 4000);
}

#[test]
fn cbor_never_panics() {
    let mut cbor = encoded("application/cbor");
    cbor.push([b"\x81".repeat(100_000), vec![0xf6]].concat());
    cbor.push(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff".to_vec()); // array claiming 2^64 items
    cbor.push(b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff".to_vec()); // bytes claiming 2^64 bytes
    cbor.push(b"\xc6\xc6\xc6\xc6\xf6".to_vec()); // nested tags
    run("cbor", targets::cbor, cbor, 4000);
}

#[test]
fn text_never_panics() {
    let text = vec![
        b"plain text".to_vec(),
        "unicode \u{1F980}".as_bytes().to_vec(),
        vec![0xff, 0xfe, 0x00],
        Vec::new(),
    ];
    run("text", targets::text, text, 4000);
}

#[test]
fn loader_never_panics() {
    run("loader", targets::loader, loader_seeds(), 300);
}

#[test]
fn generate_never_panics() {
    run("generate", targets::generate, loader_seeds(), 100);
}

fn loader_seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/codegen");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("tests/data/codegen exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    assert!(!seeds.is_empty());
    seeds.push(include_bytes!("../asyncapi.yaml").to_vec());
    // Alias bomb: 9^9 "lol"s if aliases were expanded naively.
    let mut bomb = String::from(
        "asyncapi: 3.0.0\ninfo: {title: x, version: '1'}\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..10u8 {
        let (name, prev) = ((b'a' + level) as char, (b'a' + level - 1) as char);
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    seeds.push(bomb.into_bytes());
    // Deep flow nesting and deep schema nesting.
    let head = b"asyncapi: 3.0.0\ninfo: {title: x, version: '1'}\nx: ".to_vec();
    seeds.push([head, deep(b"[", b"]", 5000)].concat());
    let mut schema = String::from(
        "asyncapi: 3.0.0\ninfo: {title: x, version: '1'}\ncomponents:\n  schemas:\n    s:\n",
    );
    for depth in 0..200 {
        let pad = "  ".repeat(depth * 2 + 3);
        schema.push_str(&format!("{pad}type: object\n{pad}properties:\n{pad}  p:\n"));
    }
    seeds.push(schema.into_bytes());
    // $ref cycles and refs out of the root or to the network.
    seeds.push(
        b"asyncapi: 3.0.0\ninfo: {title: x, version: '1'}\ncomponents:\n  schemas:\n    a: {$ref: '#/components/schemas/b'}\n    b: {$ref: '#/components/schemas/a'}\n    c: {$ref: '../../../../etc/passwd'}\n    d: {$ref: 'http://127.0.0.1:9/x.yaml'}\n"
            .to_vec(),
    );
    seeds
}
