//! Prints the diagnostics of a document, or its 3.0 conversion.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: check <spec> [--emit]");
        std::process::exit(2);
    };
    match asyncapi::load(
        std::path::Path::new(path),
        &asyncapi::LoadOptions::default(),
    ) {
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("{w}");
            }
            if args.iter().any(|a| a == "--emit") {
                print!("{}", asyncapi::emit::to_yaml(&l.document));
            } else {
                println!("ok: {} files", l.files.len());
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
