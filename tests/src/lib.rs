//! End-to-end tests across RustStream crates (in `tests/`), and the code generated at build
//! time for every AsyncAPI document of the corpus and of `data/codegen`: compiling this crate
//! proves that generated code compiles, warning-free under the workspace lints.
//!
//! Forgetting to implement an operation of the generated `Handler` trait does not compile
//! (E0046, missing trait item):
//!
//! ```compile_fail,E0046
//! use ruststream::Connection;
//! use ruststream::router::{Context, HandlerError};
//! use ruststream_e2e::codegen::service::*;
//!
//! struct App;
//!
//! impl Handler for App {
//!     async fn on_user_signed_up<C: Connection>(
//!         &self,
//!         _message: UserSignedUpPayload,
//!         _headers: UserSignedUpHeaders,
//!         _params: UserSignedUpParams,
//!         _ctx: Context<C>,
//!     ) -> Result<(), HandlerError> {
//!         Ok(())
//!     }
//!     // `sum`, `lookup` and `on_shape` are missing.
//! }
//! ```
//!
//! while implementing every operation does:
//!
//! ```
//! use ruststream::Connection;
//! use ruststream::router::{Context, HandlerError, Router};
//! use ruststream_e2e::codegen::service::*;
//!
//! struct App;
//!
//! impl Handler for App {
//!     async fn on_user_signed_up<C: Connection>(
//!         &self,
//!         _message: UserSignedUpPayload,
//!         _headers: UserSignedUpHeaders,
//!         _params: UserSignedUpParams,
//!         _ctx: Context<C>,
//!     ) -> Result<(), HandlerError> {
//!         Ok(())
//!     }
//!     async fn sum<C: Connection>(
//!         &self,
//!         m: SumRequestPayload,
//!         _ctx: Context<C>,
//!     ) -> Result<SumResultPayload, HandlerError> {
//!         Ok(SumResultPayload { sum: m.a + m.b })
//!     }
//!     async fn lookup<C: Connection>(
//!         &self,
//!         _message: LookupRequestPayload,
//!         params: LookupParams,
//!         _ctx: Context<C>,
//!     ) -> Result<ProfilePayload, HandlerError> {
//!         Ok(ProfilePayload { user_id: params.user_id })
//!     }
//!     async fn on_shape<C: Connection>(
//!         &self,
//!         _message: OnShapeMessage,
//!         _ctx: Context<C>,
//!     ) -> Result<(), HandlerError> {
//!         Ok(())
//!     }
//! }
//!
//! let mut router = Router::<ruststream::memory::MemoryConnection>::new();
//! register(&mut router, App)?;
//! # Ok::<(), ruststream::Error>(())
//! ```

include!(concat!(env!("OUT_DIR"), "/specs.rs"));
