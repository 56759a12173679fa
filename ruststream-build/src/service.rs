//! The application side (handler trait, `register`, publisher) and the client side.

use proc_macro2::TokenStream;
use quote::quote;

use crate::generate::Op;

const RS: &str = "::ruststream";

fn rs() -> TokenStream {
    RS.parse().unwrap_or_default()
}

/// The address expression for an operation: rendered from `params` or the literal address.
fn address_expr(op: &Op<'_>) -> TokenStream {
    let address = &op.address;
    if op.params.is_some() {
        quote!(params.address()?)
    } else {
        quote!(::ruststream::client::address(#address))
    }
}

fn params_arg(op: &Op<'_>) -> TokenStream {
    match &op.params {
        Some(p) => quote!(params: &#p,),
        None => quote!(),
    }
}

fn headers_arg(op: &Op<'_>) -> (TokenStream, TokenStream) {
    let rs = rs();
    match &op.headers {
        Some(h) => (quote!(headers: &#h,), quote!(headers.to_headers()?)),
        None => (quote!(), quote!(#rs::Headers::default())),
    }
}

/// The checks a publish makes before encoding: the message, its headers and its parameters,
/// each when validated.
fn send_checks(op: &Op<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    if op.validate {
        out.extend(quote!(::ruststream::validate::ensure("payload", message)?;));
    }
    if op.validate_headers {
        out.extend(quote!(::ruststream::validate::ensure("headers", headers)?;));
    }
    if op.validate_params {
        out.extend(quote!(::ruststream::validate::ensure("parameters", params)?;));
    }
    out
}

/// `head { body }`, moving `body` in (interpolating it with `quote!` would copy it).
pub(crate) fn braced(mut head: TokenStream, body: TokenStream) -> TokenStream {
    head.extend([proc_macro2::TokenTree::Group(proc_macro2::Group::new(
        proc_macro2::Delimiter::Brace,
        body,
    ))]);
    head
}

/// One method of the `Handler` trait (a received operation).
pub(crate) fn trait_method(op: &Op<'_>) -> TokenStream {
    let rs = rs();
    let docs = op.docs();
    let name = crate::naming::ident(&op.method);
    let message = &op.message;
    let params = match &op.params {
        Some(p) => quote!(params: #p,),
        None => quote!(),
    };
    let headers = match &op.headers {
        Some(h) => quote!(headers: #h,),
        None => quote!(),
    };
    let output = match &op.reply {
        Some(reply) => {
            let r = &reply.message;
            quote!(#r)
        }
        None => quote!(()),
    };
    quote! {
        #docs
        fn #name<C: #rs::Connection>(
            &self,
            message: #message,
            #headers
            #params
            ctx: #rs::router::Context<C>,
        ) -> impl ::core::future::Future<Output = ::core::result::Result<#output, #rs::router::HandlerError>> + Send;
    }
}

/// The `Handler` trait around its methods.
pub(crate) fn handler_trait(methods: TokenStream) -> TokenStream {
    let head = quote! {
        /// The operations this application receives: implement every method, then
        /// [`register`] the implementation on a router. A missing method does not compile.
        pub trait Handler: Send + Sync + 'static
    };
    braced(head, methods)
}

/// The first statement of `register`.
pub(crate) fn handler_binding(any_received: bool) -> TokenStream {
    if any_received {
        quote!(let handler = ::std::sync::Arc::new(handler);)
    } else {
        quote!(let _ = (router, handler);)
    }
}

/// The last statement of `register`.
pub(crate) fn register_tail() -> TokenStream {
    quote!(Ok(()))
}

/// The `register` function around its statements.
pub(crate) fn register_fn(statements: TokenStream) -> TokenStream {
    let rs = rs();
    let head = quote! {
        /// Register one route per received operation of `handler` on `router`.
        ///
        /// # Errors
        /// When the router refuses a route.
        pub fn register<C: #rs::Connection, H: Handler>(
            router: &mut #rs::router::Router<C>,
            handler: H,
        ) -> #rs::Result<()>
    };
    braced(head, statements)
}

/// The statement of `register` that routes one received operation.
pub(crate) fn registration(op: &Op<'_>) -> TokenStream {
    let rs = rs();
    let name = crate::naming::ident(&op.method);
    let message = &op.message;
    let address = &op.address;
    let op_id = &op.op.id;
    let content_type = &op.content_type;
    let (mut params_bind, mut params_arg) = match &op.params {
        Some(p) if op.validate_params => (
            quote! {
                let params = #p::from_params(ctx.params());
                #rs::validate::ensure("parameters", &params).map_err(#rs::router::HandlerError::invalid)?;
            },
            quote!(params,),
        ),
        Some(p) => (
            quote! {
                let params = #p::from_params(ctx.params());
            },
            quote!(params,),
        ),
        None => (quote!(), quote!()),
    };
    if let Some(h) = &op.headers {
        let check = if op.validate_headers {
            quote!(#rs::validate::ensure("headers", &headers).map_err(#rs::router::HandlerError::invalid)?;)
        } else {
            quote!()
        };
        params_bind = quote! {
            #params_bind
            let headers = #h::from_headers(ctx.headers())
                .map_err(#rs::router::HandlerError::permanent)?;
            #check
        };
        params_arg = quote!(headers, #params_arg);
    }
    // A reply that violates its schema is the handler's failure (never sent).
    let call = match &op.reply {
        Some(reply) if reply.validate => quote! {
            let reply = handler.#name(message, #params_arg ctx).await?;
            #rs::validate::ensure("payload", &reply).map_err(#rs::router::HandlerError::permanent)?;
            Ok(reply)
        },
        _ => quote!(handler.#name(message, #params_arg ctx).await),
    };
    // The closure every kind of route calls the handler method through.
    let handler_fn = quote! {
        move |message: #message, ctx: #rs::router::Context<C>| {
            let handler = ::std::sync::Arc::clone(&handler);
            async move {
                #params_bind
                #call
            }
        },
    };
    let mut route =
        quote!(#rs::router::Route::new(#address)?.name(#op_id).content_type(#content_type));
    if let Some(queue) = &op.queue {
        route = quote!(#route.queue_group(#queue));
    }
    match &op.reply {
        Some(reply) => {
            if let Some(addr) = &reply.address {
                route = quote!(#route.reply_address(#addr));
            }
            let reply_ct = &reply.content_type;
            route = quote!(#route.reply_content_type(#reply_ct));
            let r = &reply.message;
            if op.validate {
                quote! {
                    {
                        let handler = ::std::sync::Arc::clone(&handler);
                        router.route_reply_with::<#message, #r, _, _, _>(
                            #route,
                            #rs::validate::decode::<#message>,
                            #handler_fn
                        );
                    }
                }
            } else {
                quote! {
                    {
                        let handler = ::std::sync::Arc::clone(&handler);
                        router.route_reply::<#message, #r, _, _>(
                            #route,
                            #handler_fn
                        );
                    }
                }
            }
        }
        None if op.multi => quote! {
            {
                let handler = ::std::sync::Arc::clone(&handler);
                router.route_with::<#message, _, _, _>(
                    #route,
                    #message::decode,
                    #handler_fn
                );
            }
        },
        None if op.validate => quote! {
            {
                let handler = ::std::sync::Arc::clone(&handler);
                router.route_with::<#message, _, _, _>(
                    #route,
                    #rs::validate::decode::<#message>,
                    #handler_fn
                );
            }
        },
        None => quote! {
            {
                let handler = ::std::sync::Arc::clone(&handler);
                router.route::<#message, _, _>(
                    #route,
                    #handler_fn
                );
            }
        },
    }
}

/// The `Publisher` struct.
pub(crate) fn publisher_struct() -> TokenStream {
    let rs = rs();
    quote! {
        /// Typed publishing for the operations this application sends.
        ///
        /// In a handler, build it with [`Publisher::from_context`] so publishes go through the
        /// router's middleware and carry the consumed message's correlation id and trace context.
        #[derive(Debug, Clone)]
        pub struct Publisher<C> {
            via: #rs::client::PublishVia<C>,
        }
    }
}

/// The `impl Publisher` block around its methods.
pub(crate) fn publisher_impl(methods: TokenStream) -> TokenStream {
    let rs = rs();
    braced(quote!(impl<C: #rs::Connection> Publisher<C>), methods)
}

/// How many methods `impl Publisher` has before the operation methods.
pub(crate) const PUBLISHER_FIXED: usize = 3;

/// The `i`th fixed method of `impl Publisher` (`i < PUBLISHER_FIXED`).
pub(crate) fn publisher_fixed(i: usize) -> TokenStream {
    let rs = rs();
    match i {
        0 => quote! {
            /// A publisher straight on `connection` (no middleware, no propagation).
            pub fn new(connection: C) -> Self {
                Publisher { via: #rs::client::PublishVia::Connection(connection) }
            }
        },
        1 => quote! {
            /// A publisher for a handler: publishes go through `ctx` (the router's middleware;
            /// the consumed message's correlation id, `traceparent` and `tracestate`).
            pub fn from_context(ctx: &#rs::router::Context<C>) -> Self {
                Publisher { via: #rs::client::PublishVia::Context(ctx.clone()) }
            }
        },
        _ => quote! {
            /// The underlying connection.
            pub fn connection(&self) -> &C {
                self.via.connection()
            }
        },
    }
}

/// The publisher method of a sent operation.
pub(crate) fn publisher_method(op: &Op<'_>) -> TokenStream {
    let rs = rs();
    let docs = op.docs();
    let name = crate::naming::ident(&op.method);
    let message = &op.message;
    let params = params_arg(op);
    let address = address_expr(op);
    let (headers_param, headers_value) = headers_arg(op);
    let content_type = &op.content_type;
    let checks = send_checks(op);
    let errors = if checks.is_empty() {
        " When the message cannot be encoded or the broker refuses it."
    } else {
        " When the message violates its schema (`Error::Validation`), cannot be encoded, or the broker refuses it."
    };
    quote! {
        #docs
        ///
        /// # Errors
        #[doc = #errors]
        pub async fn #name(&self, #params message: &#message, #headers_param) -> #rs::Result<()> {
            #checks
            #rs::client::publish_via(&self.via, #address, #content_type, message, #headers_value).await
        }
    }
}

/// The `Client` struct.
pub(crate) fn client_struct() -> TokenStream {
    quote! {
        /// A client of this application: publishes/requests what it receives and subscribes to
        /// what it sends.
        #[derive(Debug, Clone)]
        pub struct Client<C> {
            connection: C,
        }
    }
}

/// The `impl Client` block around its methods.
pub(crate) fn client_impl(methods: TokenStream) -> TokenStream {
    let rs = rs();
    braced(quote!(impl<C: #rs::Connection> Client<C>), methods)
}

/// How many methods `impl Client` has before the operation methods.
pub(crate) const CLIENT_FIXED: usize = 2;

/// The `i`th fixed method of `impl Client` (`i < CLIENT_FIXED`).
pub(crate) fn client_fixed(i: usize) -> TokenStream {
    if i == 0 {
        quote! {
            /// A client on `connection`.
            pub fn new(connection: C) -> Self {
                Client { connection }
            }
        }
    } else {
        quote! {
            /// The underlying connection.
            pub fn connection(&self) -> &C {
                &self.connection
            }
        }
    }
}

/// The client method of an operation: publish or request what the application receives,
/// subscribe to what it sends.
pub(crate) fn client_method(op: &Op<'_>) -> TokenStream {
    let rs = rs();
    let docs = op.docs();
    let name = crate::naming::ident(&op.method);
    let message = &op.message;
    let content_type = &op.content_type;
    if op.receives() {
        let params = params_arg(op);
        let address = address_expr(op);
        let (headers_param, headers_value) = headers_arg(op);
        match &op.reply {
            Some(reply) => {
                let r = &reply.message;
                let request = if reply.validate {
                    quote! {
                        let reply = #rs::client::request::<C, #message, #r>(&self.connection, #address, #content_type, message, timeout).await?;
                        ::ruststream::validate::ensure("payload", &reply)?;
                        Ok(reply)
                    }
                } else {
                    quote!(#rs::client::request::<C, #message, #r>(&self.connection, #address, #content_type, message, timeout).await)
                };
                let mut checks = send_checks(op);
                if op.validate_headers {
                    // Requests carry no typed headers.
                    checks = quote!();
                    if op.validate {
                        checks.extend(quote!(::ruststream::validate::ensure("payload", message)?;));
                    }
                    if op.validate_params {
                        checks
                            .extend(quote!(::ruststream::validate::ensure("parameters", params)?;));
                    }
                }
                quote! {
                    #docs
                    ///
                    /// Sends the request and waits up to `timeout` for the typed reply.
                    ///
                    /// # Errors
                    /// On validation, encoding, transport, timeout or reply decoding errors.
                    pub async fn #name(&self, #params message: &#message, timeout: ::core::time::Duration) -> #rs::Result<#r>
                    where
                        C: #rs::capability::RequestReply,
                    {
                        #checks
                        #request
                    }
                }
            }
            None => {
                let checks = send_checks(op);
                let errors = if checks.is_empty() {
                    " When the message cannot be encoded or the broker refuses it."
                } else {
                    " When the message violates its schema (`Error::Validation`), cannot be encoded, or the broker refuses it."
                };
                quote! {
                    #docs
                    ///
                    /// # Errors
                    #[doc = #errors]
                    pub async fn #name(&self, #params message: &#message, #headers_param) -> #rs::Result<()> {
                        #checks
                        #rs::client::publish(&self.connection, #address, #content_type, message, #headers_value).await
                    }
                }
            }
        }
    } else {
        let address = &op.address;
        let sub_name = crate::naming::ident(&op.subscribe_method);
        quote! {
            #docs
            ///
            /// Subscribes to every address of the channel; each item is the decoded message.
            ///
            /// # Errors
            /// When the address is invalid or the broker refuses the subscription.
            pub async fn #sub_name(
                &self,
                options: #rs::SubscribeOptions,
            ) -> #rs::Result<
                impl ::ruststream::reexports::futures_core::Stream<Item = #rs::Result<#rs::client::Typed<#message, <C as #rs::Subscriber>::Message>>>
                    + Send
                    + Unpin
                    + 'static
                    + use<C>,
            > {
                let address = #rs::Address::parse(#address).map_err(|e| #rs::Error::InvalidAddress {
                    address: #address.to_owned(),
                    reason: e.to_string().into(),
                })?;
                #rs::client::subscribe::<C, #message>(&self.connection, &address, options).await
            }
        }
    }
}
