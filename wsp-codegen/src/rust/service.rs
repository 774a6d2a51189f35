//! Services: the trait an application implements for each side of a service, and the adapter
//! that serves it through `wsp_runtime::codegen::Service`.
//!
//! A service `S` has two sides. The server side is trait `S` (served by `SServer`, called with
//! `SClient`); the `client { }` block is trait `SCallbacks` (served by `SCallbacksServer` on the
//! client, called by the server with `SCallbacksClient`).

use proc_macro2::{Ident, TokenStream};
use quote::quote;
use wsp_idl::{Method, MethodKind, Service};

use super::PackageGen;
use super::docs::{doc_attrs, method_doc_attrs};
use super::names::{camel, field_ident, ident, type_ident};
use super::types::deprecated_attr;

/// One direction of a service: its methods and the names generated for it.
pub(crate) struct Side<'a> {
    pub(crate) service: &'a Service,
    pub(crate) methods: &'a [Method],
    /// The wire service name: `pkg.S` or `pkg.S.client`.
    pub(crate) wire_name: String,
    /// The trait implementers write: `S` or `SCallbacks`.
    pub(crate) trait_name: Ident,
    /// The `Service` adapter: `SServer` or `SCallbacksServer`.
    pub(crate) server_name: Ident,
    /// The typed caller: `SClient` or `SCallbacksClient`.
    pub(crate) client_name: Ident,
    /// Whether this is the `client { }` block.
    pub(crate) is_callbacks: bool,
}

impl<'a> Side<'a> {
    fn new(service: &'a Service, is_callbacks: bool) -> Self {
        let base = camel(&service.name);
        let base = if is_callbacks {
            format!("{base}Callbacks")
        } else {
            base
        };
        let trait_name = type_ident(&base);
        Side {
            service,
            methods: if is_callbacks {
                &service.client_methods
            } else {
                &service.methods
            },
            wire_name: if is_callbacks {
                service.client_service_name()
            } else {
                service.qualified_name.clone()
            },
            trait_name,
            server_name: ident(&format!("{base}Server")),
            client_name: ident(&format!("{base}Client")),
            is_callbacks,
        }
    }

    /// The broadcaster of a `client { }` block's notifications: `SBroadcast`.
    pub(crate) fn broadcast_name(&self) -> Ident {
        ident(&format!("{}Broadcast", camel(&self.service.name)))
    }

    /// The wire method string, `pkg.S/m`.
    pub(crate) fn path(&self, m: &Method) -> String {
        format!("{}/{}", self.wire_name, m.name)
    }

    /// The adapter's type parameter: `T`, unless the trait itself is called that.
    fn impl_param(&self) -> Ident {
        if self.trait_name == "T" {
            ident("Impl")
        } else {
            ident("T")
        }
    }
}

impl PackageGen<'_> {
    /// The top-level Rust names one service generates, with what each stands for.
    pub(crate) fn service_names(&self, s: &Service) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let sides = [Side::new(s, false), Side::new(s, true)];
        for side in &sides {
            if side.is_callbacks && s.client_methods.is_empty() {
                continue;
            }
            let what = |kind: &str| format!("the {kind} of service `{}`", s.qualified_name);
            let (serves, calls) = if side.is_callbacks {
                (self.opts.build_client, self.opts.build_server)
            } else {
                (self.opts.build_server, self.opts.build_client)
            };
            if serves {
                out.push((side.trait_name.to_string(), what("trait")));
                out.push((side.server_name.to_string(), what("adapter")));
            }
            if calls {
                out.push((side.client_name.to_string(), what("client")));
                if side.is_callbacks && side.methods.iter().any(|m| m.kind == MethodKind::Notify) {
                    out.push((side.broadcast_name().to_string(), what("broadcaster")));
                }
            }
        }
        out
    }

    /// Everything generated for one service, on the sides this build wants.
    pub(crate) fn service(&self, s: &Service) -> TokenStream {
        let server = Side::new(s, false);
        let callbacks = Side::new(s, true);
        let has_callbacks = !s.client_methods.is_empty();
        let mut items = Vec::new();
        if self.opts.build_server {
            items.push(self.service_trait(&server));
            items.push(self.adapter(&server));
            if has_callbacks {
                items.push(self.client(&callbacks));
                items.extend(self.broadcast(&callbacks));
            }
        }
        if self.opts.build_client {
            items.push(self.client(&server));
            if has_callbacks {
                items.push(self.service_trait(&callbacks));
                items.push(self.adapter(&callbacks));
            }
        }
        quote!(#(#items)*)
    }

    /// The name of the context parameter: `ctx`, unless a parameter is called that.
    fn ctx_ident(m: &Method) -> Ident {
        if m.params
            .iter()
            .chain(&m.input)
            .any(|p| field_ident(&p.name) == "ctx")
        {
            ident("call_ctx")
        } else {
            ident("ctx")
        }
    }

    /// The error type a handler of `m` returns: `RpcError` of its `throws` type (the declared
    /// error or a runtime one), or the runtime's error.
    fn handler_error(&self, m: &Method) -> TokenStream {
        match m.throws {
            Some(id) => {
                let e = self.type_path(id);
                quote!(wsp::RpcError<#e>)
            }
            None => quote!(wsp::ServiceError),
        }
    }

    /// The Rust result type of `m` (`()` without one).
    pub(crate) fn result_type(&self, m: &Method) -> TokenStream {
        match &m.returns {
            Some(ty) => self.rust_type(ty),
            None => quote!(()),
        }
    }

    /// The parameters as `name: Type` pairs.
    pub(crate) fn params(&self, m: &Method) -> Vec<TokenStream> {
        m.params
            .iter()
            .map(|p| {
                let name = field_ident(&p.name);
                let ty = self.rust_type(&p.ty);
                quote!(#name: #ty)
            })
            .collect()
    }

    /// The trait an application implements to serve one side.
    fn service_trait(&self, side: &Side<'_>) -> TokenStream {
        let s = side.service;
        let name = &side.trait_name;
        let docs = if side.is_callbacks {
            let fallback = format!(
                "The calls the server makes on a connected client of `{}` (served as `{}` by \
                 the client application).",
                s.qualified_name, side.wire_name
            );
            doc_attrs(&s.client_docs, &fallback)
        } else {
            doc_attrs(&s.docs, &format!("The service `{}`.", s.qualified_name))
        };
        // The client that calls this side is generated with the other side; link it only when
        // it exists, so rustdoc sees no broken link.
        let client_generated = if side.is_callbacks {
            self.opts.build_server
        } else {
            self.opts.build_client
        };
        let client = if client_generated {
            format!("[`{}`]", side.client_name)
        } else {
            format!("`{}`", side.client_name)
        };
        let extra = format!(
            " Implement it and serve it with [`{}`]; call it with {client}.",
            side.server_name
        );
        let deprecated = deprecated_attr(&s.deprecated);
        let methods = side.methods.iter().map(|m| self.trait_method(side, m));
        quote! {
            #docs
            #[doc = ""]
            #[doc = #extra]
            #deprecated
            pub trait #name: wsp::Send + wsp::Sync + 'static {
                #(#methods)*
            }
        }
    }

    /// One method of a service trait.
    fn trait_method(&self, side: &Side<'_>, m: &Method) -> TokenStream {
        let name = field_ident(&m.name);
        let docs = method_doc_attrs(m, &format!("Handles `{}`.", side.path(m)));
        let deprecated = deprecated_attr(&m.deprecated);
        let ctx = Self::ctx_ident(m);
        let mut params = self.params(m);
        if let Some(input) = &m.input {
            let name = field_ident(&input.name);
            let ty = self.rust_type(&input.ty);
            params.push(quote!(#name: wsp::Items<#ty>));
        }
        let result = self.result_type(m);
        let error = self.handler_error(m);
        let output = match m.kind {
            MethodKind::Rpc | MethodKind::ClientStream => quote! {
                impl wsp::Future<
                    Output = wsp::Result<#result, #error>
                > + wsp::Send
            },
            MethodKind::Stream | MethodKind::BidiStream => quote! {
                impl wsp::Stream<
                    Item = wsp::Result<#result, #error>
                > + wsp::Send + 'static
            },
            MethodKind::Notify => quote! {
                impl wsp::Future<Output = ()> + wsp::Send
            },
        };
        // A stream outlives the call that starts it, so its method gets the shared service
        // itself (`self: Arc<Self>`) to move into the stream, instead of a borrow it could not
        // keep.
        let receiver = match m.kind {
            MethodKind::Stream | MethodKind::BidiStream => quote!(self: wsp::Arc<Self>),
            _ => quote!(&self),
        };
        quote! {
            #docs
            #deprecated
            fn #name(#receiver, #ctx: wsp::CallContext #(, #params)*) -> #output;
        }
    }

    /// The adapter that serves a trait implementation as a `wsp_runtime` service.
    fn adapter(&self, side: &Side<'_>) -> TokenStream {
        let s = side.service;
        let trait_name = &side.trait_name;
        let g = side.impl_param();
        let server = &side.server_name;
        let wire_name = &side.wire_name;
        let fingerprint = &s.fingerprint;
        let deprecated = deprecated_attr(&s.deprecated);
        let doc = format!(
            " Serves an implementation of [`{trait_name}`] as the service `{wire_name}`; \
             register it with `into_service()`."
        );
        let arms = side.methods.iter().map(|m| self.dispatch_arm(side, m));
        quote! {
            #[doc = #doc]
            #deprecated
            pub struct #server<#g> {
                inner: wsp::Arc<#g>,
            }

            impl<#g: #trait_name> #server<#g> {
                /// The service name on the wire.
                pub const NAME: &'static str = #wire_name;
                /// The schema fingerprint sent in HELLO.
                pub const FINGERPRINT: &'static str = #fingerprint;

                /// Wraps an implementation.
                pub fn new(service: #g) -> Self {
                    Self::from_arc(wsp::Arc::new(service))
                }

                /// Wraps a shared implementation.
                pub fn from_arc(service: wsp::Arc<#g>) -> Self {
                    Self { inner: service }
                }

                /// The implementation.
                pub fn get_ref(&self) -> &wsp::Arc<#g> {
                    &self.inner
                }

                /// The adapter as a service to register (`ServerBuilder::service`,
                /// `ClientBuilder::service`, `add_service`).
                pub fn into_service(self) -> wsp::Arc<dyn wsp::Service> {
                    wsp::Arc::new(self)
                }
            }

            impl<#g> wsp::Clone for #server<#g> {
                fn clone(&self) -> Self {
                    Self { inner: wsp::Arc::clone(&self.inner) }
                }
            }

            impl<#g> wsp::Debug for #server<#g> {
                fn fmt(&self, f: &mut wsp::fmt::Formatter<'_>) -> wsp::fmt::Result {
                    f.write_str(::std::stringify!(#server))
                }
            }

            impl<#g: #trait_name> wsp::Service for #server<#g> {
                fn name(&self) -> &str {
                    #wire_name
                }

                fn fingerprint(&self) -> &str {
                    #fingerprint
                }

                fn call(
                    &self,
                    request: wsp::Request<'_>
                ) -> wsp::Handler {
                    match (request.method, request.kind) {
                        #(#arms)*
                        _ => wsp::Handler::UnknownMethod,
                    }
                }
            }

        }
    }

    /// The match arm dispatching one method: the runtime decodes the arguments (into the
    /// closure's `Args` pattern, whose type names the parameters) and runs the body.
    fn dispatch_arm(&self, side: &Side<'_>, m: &Method) -> TokenStream {
        let wire = &m.name;
        let trait_name = &side.trait_name;
        let g = side.impl_param();
        let method = field_ident(&m.name);
        // The parameters as the runtime's generic decoder reads them, `(Req<A>, (Opt<B>, ()))`,
        // and the pattern of their values, `(__a0, (__a1, ()))`.
        let mut params = quote!(());
        let mut pattern = quote!(());
        // Only the trailing optional parameters may be missing; an optional one before a
        // required one is sent, as nil when absent.
        let omittable_from = m.omittable_from();
        for (i, p) in m.params.iter().enumerate().rev() {
            let base = self.wire(&p.ty).unwrap_or_else(|| self.rust_type(&p.ty));
            let param = if i >= omittable_from {
                quote!(wsp::Opt<#base>)
            } else {
                quote!(wsp::Req<#base>)
            };
            params = quote!((#param, #params));
            let var = ident(&format!("__a{i}"));
            pattern = quote!((#var, #pattern));
        }
        let values = m.params.iter().enumerate().map(|(i, p)| {
            let var = ident(&format!("__a{i}"));
            if super::needs_adapter(&p.ty) {
                quote!(#var.0)
            } else {
                quote!(#var)
            }
        });
        let receiver = match m.kind {
            MethodKind::Stream | MethodKind::BidiStream => quote!(__svc),
            _ => quote!(&*__svc),
        };
        // The caller's items, decoded (through their adapter where they need one).
        let items = m.input.as_ref().map(|input| match self.wire(&input.ty) {
            Some(_) => {
                let shape = super::shape_tokens(&input.ty);
                quote!(wsp::Items::adapted::<#shape>(__input))
            }
            None => quote!(wsp::Items::new(__input)),
        });
        let values = values.chain(items);
        let call = quote! {
            <#g as #trait_name>::#method(#receiver, __ctx #(, #values)*)
        };
        let wire_result = m.returns.as_ref().and_then(|r| self.wire(r));
        let (kind, serve, body) = match m.kind {
            MethodKind::Rpc | MethodKind::ClientStream => {
                let result = match wire_result {
                    Some(w) => quote!(#call.await.map(<#w>::new)),
                    None => quote!(#call.await),
                };
                let (kind, serve) = if m.kind == MethodKind::Rpc {
                    (quote!(Unary), quote!(unary))
                } else {
                    (quote!(Upload), quote!(upload))
                };
                (kind, serve, quote!(async move { #result }))
            }
            MethodKind::Stream | MethodKind::BidiStream => {
                let items = match wire_result {
                    Some(w) => quote!(wsp::StreamExt::map(#call, |__item| __item.map(<#w>::new))),
                    None => call,
                };
                if m.kind == MethodKind::Stream {
                    (quote!(Stream), quote!(stream), items)
                } else {
                    (quote!(Duplex), quote!(duplex), items)
                }
            }
            MethodKind::Notify => (
                quote!(Notify),
                quote!(notify),
                quote!(async move { #call.await }),
            ),
        };
        let input = m.input.as_ref().map(|_| quote!(, __input: wsp::Input));
        quote! {
            (#wire, wsp::CallKind::#kind) => request.#serve(
                &self.inner,
                |__svc, __ctx, wsp::Args(#pattern): wsp::Args<#params> #input| #body
            ),
        }
    }
}
