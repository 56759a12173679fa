//! Procedural macros for RustStream. Use them through `ruststream` (feature `app`):
//! `#[ruststream::app]`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, spanned::Spanned};

/// Turn `async fn build() -> App<…>` into the program's entry point.
///
/// The function stays as written; the macro adds a `fn main()` that calls
/// `ruststream::app::run_cli(build)`: it starts the tokio runtime, initialises tracing, parses
/// the command line (`run`, `asyncapi gen`, …) and turns the outcome into the exit code.
///
/// ```ignore
/// #[ruststream::app]
/// async fn build() -> ruststream::app::App<ruststream::memory::MemoryBroker> {
///     ruststream::app::App::new(ruststream::memory::MemoryBroker::new())
/// }
/// ```
#[proc_macro_attribute]
pub fn app(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into()).into()
}

fn error(span: proc_macro2::Span, message: &str) -> proc_macro2::TokenStream {
    syn::Error::new(span, message).to_compile_error()
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    if !args.is_empty() {
        return error(args.span(), "#[ruststream::app] takes no arguments");
    }
    let function: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error(),
    };
    if function.sig.asyncness.is_none() {
        return error(
            function.sig.fn_token.span(),
            "#[ruststream::app] expects an `async fn` that builds and returns the app",
        );
    }
    if !function.sig.inputs.is_empty() || !function.sig.generics.params.is_empty() {
        return error(
            function.sig.inputs.span(),
            "#[ruststream::app] expects a function without arguments or generics",
        );
    }
    if function.sig.ident == "main" {
        return error(
            function.sig.ident.span(),
            "name the builder function something other than `main` (e.g. `build`): \
             #[ruststream::app] generates `main`",
        );
    }
    let name = &function.sig.ident;
    quote! {
        #function

        fn main() -> ::std::process::ExitCode {
            ::ruststream::app::run_cli(#name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str) -> String {
        expand(args.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn generates_main_calling_run_cli() {
        let out = expand_str("", "async fn build() -> App<B> { App::new(b) }");
        assert!(out.contains("async fn build"), "{out}");
        assert!(
            out.contains("fn main () -> :: std :: process :: ExitCode"),
            "{out}"
        );
        assert!(
            out.contains(":: ruststream :: app :: run_cli (build)"),
            "{out}"
        );
    }

    #[test]
    fn rejects_misuse_with_a_message() {
        for (args, item, message) in [
            ("x", "async fn build() {}", "takes no arguments"),
            ("", "fn build() {}", "expects an `async fn`"),
            (
                "",
                "async fn build(x: u8) {}",
                "without arguments or generics",
            ),
            (
                "",
                "async fn build<B>() {}",
                "without arguments or generics",
            ),
            ("", "async fn main() {}", "generates `main`"),
            ("", "struct NotAFunction;", "expected"),
        ] {
            let out = expand_str(args, item);
            assert!(out.contains("compile_error"), "{item}: {out}");
            assert!(out.contains(message), "{item}: {out}");
        }
    }
}
