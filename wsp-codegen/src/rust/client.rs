//! Typed clients (one per side of a service).

use proc_macro2::TokenStream;
use quote::quote;
use wsp_idl::{Method, MethodKind, Primitive, TypeRef};

use super::PackageGen;
use super::docs::method_doc_attrs;
use super::names::{field_ident, ident};
use super::service::Side;
use super::types::deprecated_attr;

/// Names of the helper methods of a generated client; a schema method with one of these names
/// gets a trailing `_`.
const CLIENT_HELPERS: &[&str] = &[
    "from_caller",
    "from_context",
    "with_options",
    "with_timeout",
    "caller",
    "connect",
    "client",
];

impl PackageGen<'_> {
    /// The error type a client method returns.
    fn client_error(&self, m: &Method) -> TokenStream {
        match m.throws {
            Some(id) => {
                let e = self.type_path(id);
                quote!(wsp::RpcError<#e>)
            }
            None => quote!(wsp::CallError),
        }
    }

    /// The typed client that calls one side of a service.
    pub(crate) fn client(&self, side: &Side<'_>) -> TokenStream {
        let s = side.service;
        let name = &side.client_name;
        let doc = if side.is_callbacks {
            format!(
                " Calls the methods of `{}` on a connected client (from a handler: \
                 `{name}::from_context(&ctx)`). Cheap to clone; calls run concurrently through \
                 `&self`.",
                side.wire_name
            )
        } else {
            format!(
                " Calls the service `{}` (make one with `{name}::from_caller(client.caller())`). \
                 Cheap to clone; calls run concurrently through `&self`.",
                side.wire_name
            )
        };
        let deprecated = deprecated_attr(&s.deprecated);
        let methods = side.methods.iter().map(|m| self.client_method(side, m));
        let from_context = if side.is_callbacks {
            quote! {
                /// A client calling back the peer a handler's call came from.
                pub fn from_context(ctx: &wsp::CallContext) -> Self {
                    Self::from_caller(ctx.caller())
                }
            }
        } else {
            let doc = format!(
                " Connects a new [`Client`](wsp_runtime::Client) to `url` with its \
                 default settings (MessagePack, reconnecting by itself) and returns this typed \
                 client on it: `{name}::connect(\"ws://127.0.0.1:8080/\").await?`. Close it with \
                 `.client()`; for TLS, headers or other settings build the `Client` yourself \
                 and use [`from_caller`](Self::from_caller)."
            );
            quote! {
                #[doc = #doc]
                pub async fn connect(
                    url: impl wsp::Into<wsp::String>
                ) -> wsp::Result<Self, wsp::ConnectError> {
                    let client = wsp::Client::builder(url).build();
                    client.connect().await?;
                    wsp::Ok(Self {
                        caller: client.caller(),
                        options: wsp::Default::default(),
                        client: wsp::Some(client),
                    })
                }

                /// The client [`connect`](Self::connect) made (to close it), if this one was
                /// made so.
                pub fn client(&self) -> wsp::Option<&wsp::Client> {
                    self.client.as_ref()
                }
            }
        };
        // A client made by `connect` keeps the `Client` it made, so that it can be closed.
        let (client_field, client_none) = if side.is_callbacks {
            (TokenStream::new(), TokenStream::new())
        } else {
            (
                quote!(client: wsp::Option<wsp::Client>,),
                quote!(client: wsp::None),
            )
        };
        quote! {
            #[doc = #doc]
            #deprecated
            #[derive(wsp::Debug, wsp::Clone)]
            pub struct #name {
                caller: wsp::Caller,
                options: wsp::CallOptions,
                #client_field
            }

            impl #name {
                /// A client making its calls through `caller` (from a `Client`, a `Peer` or a
                /// `CallContext`).
                pub fn from_caller(caller: wsp::Caller) -> Self {
                    Self { caller, options: wsp::Default::default(), #client_none }
                }

                #from_context

                /// A copy whose calls use `options` (deadline).
                pub fn with_options(&self, options: wsp::CallOptions) -> Self {
                    Self { options, ..wsp::Clone::clone(self) }
                }

                /// A copy whose calls may each take at most `timeout`.
                pub fn with_timeout(&self, timeout: wsp::Duration) -> Self {
                    self.with_options(self.options.timeout(timeout))
                }

                /// The underlying caller.
                pub fn caller(&self) -> &wsp::Caller {
                    &self.caller
                }

                #(#methods)*
            }

            impl wsp::From<wsp::Caller> for #name {
                fn from(caller: wsp::Caller) -> Self {
                    Self::from_caller(caller)
                }
            }
        }
    }

    /// `SBroadcast`: the notifications of a `client { }` block sent to every connected client
    /// of a server (`Server::notify_all`: encoded once per codec, a client whose send queue is
    /// full misses it); `None` without notifications there.
    pub(crate) fn broadcast(&self, side: &Side<'_>) -> Option<TokenStream> {
        let notifications: Vec<&Method> = side
            .methods
            .iter()
            .filter(|m| m.kind == MethodKind::Notify)
            .collect();
        if !side.is_callbacks || notifications.is_empty() {
            return None;
        }
        let name = side.broadcast_name();
        let rust_name = |m: &Method| {
            let name = field_ident(&m.name);
            if name == "new" { ident("new_") } else { name }
        };
        let doc = format!(
            " Sends the notifications of `{}` to every client connected to a server: \
             `{name}::new(&server).{}(…)`. Nothing waits: each frame is encoded once per codec \
             and queued on each connection, and a client whose send queue is full misses it \
             (the report counts it).",
            side.wire_name,
            rust_name(notifications[0])
        );
        let methods = notifications.iter().map(|m| {
            let rust_name = rust_name(m);
            let docs = method_doc_attrs(m, &format!("Sends `{}` to every client.", side.path(m)));
            let deprecated = deprecated_attr(&m.deprecated);
            let path = side.path(m);
            let params = self.params(m);
            let args = self.args_array(m);
            quote! {
                #docs
                #deprecated
                pub fn #rust_name(&self #(, #params)*) -> wsp::Result<wsp::BroadcastReport, wsp::CallError> {
                    self.server.notify_all(#path, #args)
                }
            }
        });
        Some(quote! {
            #[doc = #doc]
            #[derive(wsp::Debug, wsp::Clone, wsp::Copy)]
            pub struct #name<'a> {
                server: &'a wsp::Server,
            }

            impl<'a> #name<'a> {
                /// Broadcasts to the clients of `server`.
                pub fn new(server: &'a wsp::Server) -> Self {
                    Self { server }
                }

                #(#methods)*
            }
        })
    }

    /// The argument array of a call of `m`, from parameters of the same names: a reference to
    /// a tuple, each value wrapped in its `Wire` where it needs an adapter.
    fn args_array(&self, m: &Method) -> TokenStream {
        if m.params.is_empty() {
            // `()` would encode as nil, not as an empty argument array.
            return quote!(&[(); 0]);
        }
        let args = m.params.iter().map(|p| {
            let name = field_ident(&p.name);
            match self.wire(&p.ty) {
                Some(w) => quote!(<#w>::new(#name)),
                None => quote!(#name),
            }
        });
        quote!(&(#(#args,)*))
    }

    /// One method of a typed client.
    fn client_method(&self, side: &Side<'_>, m: &Method) -> TokenStream {
        let mut rust_name = field_ident(&m.name);
        if CLIENT_HELPERS.contains(&rust_name.to_string().as_str()) {
            rust_name = ident(&format!("{rust_name}_"));
        }
        let verb = match m.kind {
            MethodKind::Notify => "Sends the notification",
            MethodKind::Stream => "Starts the stream",
            MethodKind::Rpc => "Calls",
            MethodKind::ClientStream => "Calls, sending a stream of items,",
            MethodKind::BidiStream => "Starts the bidirectional stream",
        };
        let docs = method_doc_attrs(m, &format!("{verb} `{}`.", side.path(m)));
        let deprecated = deprecated_attr(&m.deprecated);
        let path = side.path(m);
        // A `string` parameter takes anything that becomes a `String` (`"text"`, a `String`,
        // …), so calls do not need `.into()`.
        let is_string = |ty: &TypeRef| matches!(ty, TypeRef::Primitive(Primitive::String));
        let params = m.params.iter().zip(self.params(m)).map(|(p, param)| {
            if is_string(&p.ty) {
                let name = field_ident(&p.name);
                quote!(#name: impl wsp::Into<wsp::String>)
            } else {
                param
            }
        });
        let mut params: Vec<TokenStream> = params.collect();
        // The caller's items: any stream of them, and (wrapped in their adapter where they
        // need one) what the runtime's pump sends.
        let items = m.input.as_ref().map(|input| {
            let name = field_ident(&input.name);
            let ty = self.rust_type(&input.ty);
            params.push(quote!(#name: impl wsp::Stream<Item = #ty> + wsp::Send + 'static));
            match self.wire(&input.ty) {
                Some(w) => quote!(wsp::StreamExt::map(#name, <#w>::new)),
                None => quote!(#name),
            }
        });
        let strings = m.params.iter().filter(|p| is_string(&p.ty)).map(|p| {
            let name = field_ident(&p.name);
            quote!(let #name: wsp::String = wsp::Into::into(#name);)
        });
        let strings = quote!(#(#strings)*);
        let args = self.args_array(m);
        let result = self.result_type(m);
        let error = self.client_error(m);
        let wire = m.returns.as_ref().and_then(|r| self.wire(r));
        // The runtime call: the caller's items go after the arguments.
        let (verb, items) = match &items {
            Some(items) => (quote!(upload), quote!(#items,)),
            None => (quote!(call), TokenStream::new()),
        };
        match m.kind {
            MethodKind::Rpc | MethodKind::ClientStream => {
                let (decode_ty, unwrap) = match &wire {
                    Some(w) => (quote!(#w), quote!(.0)),
                    None => (result.clone(), TokenStream::new()),
                };
                quote! {
                    #docs
                    #deprecated
                    pub async fn #rust_name(&self #(, #params)*) -> wsp::Result<#result, #error> {
                        #strings
                        let __result: #decode_ty = self
                            .caller
                            .#verb(#path, #args, #items self.options)
                            .await?;
                        wsp::Ok(__result #unwrap)
                    }
                }
            }
            MethodKind::Stream | MethodKind::BidiStream => {
                let (decode_ty, unwrap) = match &wire {
                    Some(w) => (quote!(#w), quote!(.map(|w: #w| w.0))),
                    None => (result.clone(), TokenStream::new()),
                };
                let open = if m.kind == MethodKind::Stream {
                    quote!(stream::<_, #decode_ty>)
                } else {
                    quote!(duplex::<_, _, _, #decode_ty>)
                };
                quote! {
                    #docs
                    #deprecated
                    pub fn #rust_name(&self #(, #params)*) -> impl wsp::Stream<
                        Item = wsp::Result<#result, #error>
                    > + wsp::Send + wsp::Unpin + 'static {
                        #strings
                        let __items = self.caller.#open(#path, #args, #items self.options);
                        wsp::StreamExt::map(__items, |__item| {
                            __item #unwrap .map_err(wsp::From::from)
                        })
                    }
                }
            }
            MethodKind::Notify => quote! {
                #docs
                #deprecated
                pub async fn #rust_name(&self #(, #params)*) -> wsp::Result<(), #error> {
                    #strings
                    self.caller.notify(#path, #args).await
                }
            },
        }
    }
}
