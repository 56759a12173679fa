//! `ruststream-build serve`: the documentation page of a document, on a tiny blocking HTTP
//! server (one request at a time, `Connection: close`; enough for a browser on loopback).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Serve `doc` as an HTML page at `/` (and `/docs`), with `/asyncapi.json` and
/// `/asyncapi.yaml` (AsyncAPI 3.0.0), until the process is stopped.
pub fn serve(doc: &asyncapi::Document, addr: SocketAddr) -> std::io::Result<()> {
    let html = asyncapi::html::render(doc);
    let json = asyncapi::emit::to_json(doc);
    let yaml = asyncapi::emit::to_yaml(doc);
    let listener = TcpListener::bind(addr)?;
    eprintln!(
        "serving the AsyncAPI page of `{}` at http://{}/ (Ctrl-C to stop)",
        doc.info.title,
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = respond(stream, &html, &json, &yaml);
    }
    Ok(())
}

fn respond(mut stream: TcpStream, html: &str, json: &str, yaml: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/" | "/index.html" | "/docs") => {
            ("200 OK", "text/html; charset=utf-8", html)
        }
        ("GET" | "HEAD", "/asyncapi.json") => ("200 OK", "application/json", json),
        ("GET" | "HEAD", "/asyncapi.yaml") => ("200 OK", "application/yaml; charset=utf-8", yaml),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found\n"),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "method not allowed\n",
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         x-content-type-options: nosniff\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response)?;
    stream.flush()
}
