//! The documentation page in a real browser: headless Chromium (Debian's `chromium`) loads the
//! page `ruststream-build serve` gives for the streetlights example and for a hostile
//! document, and the test checks what a reader sees after the page's script ran: every
//! operation listed, schemas expanded, `?q=turn` narrowing the list, nothing from a document
//! running as script. A screenshot is kept at `target/docs-page/streetlights.png`.
//!
//! Without `chromium` the test prints why and passes; under `CI=true` it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// `ruststream-build serve SPEC` on a free port, killed on drop.
struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Served {
    fn start(spec: &Path) -> Served {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ruststream-build"))
            .arg("serve")
            .arg(spec)
            .args(["--addr", &addr.to_string()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run Chromium headless on `url` with `extra` arguments; its stdout.
fn browse(chromium: &Path, url: &str, extra: &[&str]) -> String {
    let profile = std::env::temp_dir().join(format!(
        "ruststream-chromium-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().unwrap()
}

/// Whether the operation's section is hidden in the dumped DOM.
fn hidden(dom: &str, op: &str) -> bool {
    let start = dom
        .find(&format!("id=\"op-{op}\""))
        .unwrap_or_else(|| panic!("operation {op} not on the page"));
    let tag_start = dom[..start].rfind('<').unwrap();
    let tag_end = start + dom[start..].find('>').unwrap();
    dom[tag_start..tag_end].contains(" hidden")
}

#[test]
fn the_streetlights_page_reads_well_in_chromium() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is missing (CI installs it in .ci/run)"
        );
        eprintln!("skipped: no `chromium` on PATH (apt-get install chromium)");
        return;
    };
    let served = Served::start(&root().join("examples/streetlights/asyncapi.yaml"));
    let url = format!("http://{}/", served.addr);
    let ops = ["receiveLightMeasurement", "turnOn", "turnOff", "dimLight"];

    let dom = browse(&chromium, &url, &["--dump-dom"]);
    assert!(dom.contains("<title>Streetlights 1.0.0</title>"), "{dom}");
    assert!(
        dom.contains("4 of 4 operations shown"),
        "the filter script ran"
    );
    for op in ops {
        assert!(!hidden(&dom, op), "{op} is listed");
        assert!(
            dom.contains(&format!("href=\"#op-{op}\"")),
            "{op} in the index"
        );
    }
    assert!(dom.contains("<details class=\"schema\" open=\"\">"));
    for visible in [
        "lumens",
        "Light intensity measured in lumens.",
        "≥ <code>0</code>",
        "{streetlightId}",
        "test.mosquitto.org",
    ] {
        assert!(dom.contains(visible), "`{visible}` on the page");
    }

    let dom = browse(&chromium, &format!("{url}?q=turn"), &["--dump-dom"]);
    assert!(dom.contains("2 of 4 operations shown"));
    assert_eq!(ops.map(|op| hidden(&dom, op)), [true, false, false, true]);

    let shots = root().join("target/docs-page");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("streetlights.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chromium,
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
        ],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot {} ({size} bytes)",
        shot.display()
    );

    // Nothing from a hostile document runs: no element of its making, no script link.
    let hostile = Served::start(&root().join("tests/data/docs/hostile.yaml"));
    let dom = browse(
        &chromium,
        &format!("http://{}/", hostile.addr),
        &["--dump-dom"],
    );
    assert!(
        dom.contains("1 of 1 operations shown"),
        "the page's own script ran"
    );
    assert!(
        dom.contains("<title>Hostile &lt;script&gt;"),
        "the title stayed text"
    );
    assert_eq!(dom.matches("<script").count(), 1, "only the page's script");
    for tag in ["<img", "<svg", "<iframe", "<b ", "href=\"javascript"] {
        assert!(!dom.contains(tag), "`{tag}` made it into the DOM");
    }
    let lower = dom.to_ascii_lowercase();
    for attr in ["onerror=\"", "onload=\"", "onclick=\"", "onmouseover=\""] {
        for (i, _) in lower.match_indices(attr) {
            let tag = &dom[dom[..i].rfind('<').unwrap()..i];
            // Text after a closed tag is fine; inside a tag it would be an attribute.
            assert!(tag.contains('>'), "an `{attr}` attribute in {tag}");
        }
    }
    assert!(!dom.contains("hunter2"), "no credentials");
}
