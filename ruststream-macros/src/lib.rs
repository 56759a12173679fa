//! Procedural macros for RustStream. Use them through `ruststream` (feature `app`):
//! `#[ruststream::app]`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, parse_macro_input, spanned::Spanned};

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
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        return syn::Error::new(args.span(), "#[ruststream::app] takes no arguments")
            .to_compile_error()
            .into();
    }
    let function = parse_macro_input!(item as ItemFn);
    if function.sig.asyncness.is_none() {
        return syn::Error::new(
            function.sig.fn_token.span(),
            "#[ruststream::app] expects an `async fn` that builds and returns the app",
        )
        .to_compile_error()
        .into();
    }
    if !function.sig.inputs.is_empty() || !function.sig.generics.params.is_empty() {
        return syn::Error::new(
            function.sig.inputs.span(),
            "#[ruststream::app] expects a function without arguments or generics",
        )
        .to_compile_error()
        .into();
    }
    if function.sig.ident == "main" {
        return syn::Error::new(
            function.sig.ident.span(),
            "name the builder function something other than `main` (e.g. `build`): \
             #[ruststream::app] generates `main`",
        )
        .to_compile_error()
        .into();
    }
    let name = &function.sig.ident;
    quote! {
        #function

        fn main() -> ::std::process::ExitCode {
            ::ruststream::app::run_cli(#name)
        }
    }
    .into()
}
