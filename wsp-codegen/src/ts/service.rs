//! Services: typed clients, handler interfaces and their registration functions.

use wsp_idl::{Method, MethodKind, Service, TypeRef};

use super::Gen;
use super::names::{interface_member, key, lit, member, param, upper};
use super::source::{Source, split_top_level, wrap};
use super::types::deprecated_tags;

/// Which side of a service a set of methods belongs to.
#[derive(Clone, Copy)]
enum Side {
    /// The server's methods (`service S { … }`).
    Server,
    /// The calls the server makes on the client (`client { … }`).
    Callbacks,
}

/// The generated names of one service.
struct Names {
    meta: String,
    client: String,
    callbacks_client: String,
    broadcast: String,
    handler: String,
    context: String,
    serve: String,
    callbacks: String,
    callbacks_context: String,
    register: String,
}

/// The names one side's handler interface and registration function use.
struct SideNames {
    /// The interface the application implements (`GeometryHandler`).
    iface: String,
    /// Its context type (`GeometryContext`).
    context: String,
    /// The registration function (`serveGeometry`).
    register: String,
    /// The type of `ctx.peer` (the generated client of the other side, or `$wsp.Caller`).
    peer: String,
}

impl Names {
    /// The names of one side's handlers.
    fn side(&self, side: Side, has_callbacks: bool) -> SideNames {
        match side {
            Side::Server => SideNames {
                iface: self.handler.clone(),
                context: self.context.clone(),
                register: self.serve.clone(),
                peer: if has_callbacks {
                    self.callbacks_client.clone()
                } else {
                    "$wsp.Caller".to_owned()
                },
            },
            Side::Callbacks => SideNames {
                iface: self.callbacks.clone(),
                context: self.callbacks_context.clone(),
                register: self.register.clone(),
                peer: self.client.clone(),
            },
        }
    }

    fn of(s: &Service) -> Names {
        let n = upper(&s.name);
        Names {
            meta: format!("{n}Service"),
            client: format!("{n}Client"),
            callbacks_client: format!("{n}CallbacksClient"),
            broadcast: format!("{n}Broadcast"),
            handler: format!("{n}Handler"),
            context: format!("{n}Context"),
            serve: format!("serve{n}"),
            callbacks: format!("{n}Callbacks"),
            callbacks_context: format!("{n}CallbacksContext"),
            register: format!("register{n}Callbacks"),
        }
    }
}

impl Gen<'_> {
    /// The top-level names a service generates (for collision checks).
    pub(super) fn service_names(&self, s: &Service) -> Vec<String> {
        let n = Names::of(s);
        let mut out = vec![n.meta];
        if self.opts.build_client {
            out.push(n.client);
            if !s.client_methods.is_empty() {
                out.extend([n.callbacks, n.callbacks_context, n.register]);
            }
        }
        if self.opts.build_server {
            out.extend([n.handler, n.context, n.serve]);
            if !s.client_methods.is_empty() {
                out.push(n.callbacks_client);
            }
            if s.client_methods
                .iter()
                .any(|m| m.kind == MethodKind::Notify)
            {
                out.push(n.broadcast);
            }
        }
        out
    }

    /// Everything generated for one service.
    pub(super) fn service(&self, src: &mut Source, s: &Service) {
        let n = Names::of(s);
        let has_callbacks = !s.client_methods.is_empty();
        src.doc(&format!(
            "Wire names and schema fingerprint of `{}`.",
            s.qualified_name
        ));
        src.line(&format!("export const {} = {{", n.meta));
        src.line(&format!("name: {},", lit(&s.qualified_name)));
        src.line(&format!("clientName: {},", lit(&s.client_service_name())));
        src.line(&format!("fingerprint: {},", lit(&s.fingerprint)));
        src.line("} as const;");
        if self.opts.build_client {
            src.blank();
            let mut docs = s.docs.clone();
            if !docs.is_empty() {
                docs.push(String::new());
            }
            docs.extend(wrap(
                &format!(
                    "Calls `{}` on the other side of a connection: wraps a `Client`, a `Peer` or \
                     `ctx.peer`.",
                    s.qualified_name
                ),
                src.doc_width(),
            ));
            self.client_class(src, &n.client, &docs, &s.deprecated, s, Side::Server);
            if has_callbacks {
                let side = n.side(Side::Callbacks, true);
                src.blank();
                self.handler_interface(src, s, Side::Callbacks, &side);
                src.blank();
                self.register_fn(src, s, Side::Callbacks, &side);
            }
        }
        if self.opts.build_server {
            if has_callbacks {
                src.blank();
                let mut docs = s.client_docs.clone();
                if !docs.is_empty() {
                    docs.push(String::new());
                }
                docs.extend(wrap(
                    &format!(
                        "Calls the `client {{ }}` methods of `{}` on a connected client \
                         (`ctx.peer` in handlers).",
                        s.qualified_name
                    ),
                    src.doc_width(),
                ));
                self.client_class(
                    src,
                    &n.callbacks_client,
                    &docs,
                    &s.deprecated,
                    s,
                    Side::Callbacks,
                );
                if s.client_methods
                    .iter()
                    .any(|m| m.kind == MethodKind::Notify)
                {
                    src.blank();
                    self.broadcast_class(src, &n.broadcast, s);
                }
            }
            let side = n.side(Side::Server, has_callbacks);
            src.blank();
            self.handler_interface(src, s, Side::Server, &side);
            src.blank();
            self.register_fn(src, s, Side::Server, &side);
        }
    }

    fn methods(s: &Service, side: Side) -> &[Method] {
        match side {
            Side::Server => &s.methods,
            Side::Callbacks => &s.client_methods,
        }
    }

    fn path(s: &Service, side: Side, m: &Method) -> String {
        match side {
            Side::Server => s.method_path(m),
            Side::Callbacks => s.client_method_path(m),
        }
    }

    /// JSDoc of a method: its docs, `@param` lines for documented parameters, `@deprecated`.
    fn method_doc(&self, src: &mut Source, m: &Method) {
        let mut tags = Vec::new();
        for p in m.params.iter().chain(&m.input) {
            if !p.docs.is_empty() {
                tags.push(format!("@param {} {}", param(&p.name), p.docs.join(" ")));
            }
        }
        tags.extend(deprecated_tags(&m.deprecated));
        src.jsdoc(&m.docs, &tags);
    }

    /// `name: T` or `name?: T` (client methods, where the trailing optional parameters may be
    /// left out; an optional one before a required one is `name: T | undefined`).
    fn params_decl(&self, m: &Method, optional_marks: bool) -> Vec<String> {
        let omittable_from = m.omittable_from();
        m.params
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.ty {
                TypeRef::Optional(inner) if optional_marks && i >= omittable_from => {
                    format!("{}?: {}", param(&p.name), self.ts_type(inner))
                }
                ty => format!("{}: {}", param(&p.name), self.ts_type(ty)),
            })
            .collect()
    }

    /// A typed client class over a `Caller`.
    fn client_class(
        &self,
        src: &mut Source,
        class: &str,
        docs: &[String],
        deprecated: &Option<wsp_idl::Deprecated>,
        s: &Service,
        side: Side,
    ) {
        src.jsdoc(docs, &deprecated_tags(deprecated));
        src.line(&format!("export class {class} {{"));
        src.line("readonly #caller: $wsp.Caller;");
        src.blank();
        src.line("constructor(caller: $wsp.Caller) {");
        src.line("this.#caller = caller;");
        src.line("}");
        for m in Self::methods(s, side) {
            src.blank();
            self.client_method(src, s, side, m);
        }
        src.line("}");
    }

    fn client_method(&self, src: &mut Source, s: &Service, side: Side, m: &Method) {
        self.method_doc(src, m);
        let mut params = self.params_decl(m, true);
        let args: Vec<String> = m
            .params
            .iter()
            .map(|p| self.encode_expr(&p.ty, &param(&p.name), 0))
            .collect();
        let args = format!("[{}]", args.join(", "));
        let path = lit(&Self::path(s, side, m));
        let name = member(&m.name);
        if m.kind == MethodKind::Notify {
            signature(src, &format!("{name}("), &params, "): void {");
            call(src, "this.#caller.notify(", &[path, args], ");");
            src.line("}");
            return;
        }
        let result = m
            .returns
            .as_ref()
            .map_or("void".to_owned(), |t| self.ts_type(t));
        let mut extra = Vec::new();
        if let Some(ty) = m.returns.as_ref().filter(|t| self.needs.decodes(t)) {
            extra.push(format!("decode: {}", self.converter(ty)));
        }
        if let Some(e) = m.throws {
            extra.push(format!(
                "decodeError: {}",
                self.converter(&TypeRef::Named(e))
            ));
            extra.push(format!(
                "errorType: {}",
                lit(&self.model.type_def(e).qualified_name)
            ));
        }
        // The caller's items: any iterable of them, each encoded as it is sent.
        let mut call_args = vec![path, args];
        if let Some(input) = &m.input {
            let t = self.ts_type(&input.ty);
            params.push(format!(
                "{}: AsyncIterable<{t}> | Iterable<{t}>",
                param(&input.name)
            ));
            call_args.push(param(&input.name));
            if self.needs.encodes(&input.ty) {
                let encode = self.encode_expr(&input.ty, "v", 0);
                extra.push(format!("encodeItem: (v: {t}) => {encode}"));
            }
        }
        let options = if extra.is_empty() {
            "options".to_owned()
        } else {
            format!("{{ ...options, {} }}", extra.join(", "))
        };
        call_args.push(options);
        let streams = m.kind.has_output_stream();
        let (opts_ty, ret) = if streams {
            (
                "$wsp.StreamMethodOptions",
                format!("$wsp.WspStream<{result}>"),
            )
        } else {
            ("$wsp.MethodOptions", format!("Promise<{result}>"))
        };
        let verb = match m.kind {
            MethodKind::Stream => "stream",
            MethodKind::ClientStream => "upload",
            MethodKind::BidiStream => "duplex",
            _ => "call",
        };
        params.push(format!("options?: {opts_ty}"));
        // `async` so that an argument that cannot be encoded rejects the promise instead of
        // throwing synchronously.
        let open = if streams {
            format!("{name}(")
        } else {
            format!("async {name}(")
        };
        signature(src, &open, &params, &format!("): {ret} {{"));
        call(
            src,
            &format!("return this.#caller.{verb}<{result}>("),
            &call_args,
            ");",
        );
        src.line("}");
    }

    /// `XBroadcast`: the `client { }` notifications sent to every connection of a server.
    fn broadcast_class(&self, src: &mut Source, class: &str, s: &Service) {
        src.doc_tagged(
            &format!(
                "Sends the `client {{ }}` notifications of `{}` to every connected client of a \
                 `WspServer` (its `broadcast`: clients with a full send queue are skipped). Each \
                 method returns the number of clients it was sent to; `filter` picks clients.",
                s.qualified_name
            ),
            &deprecated_tags(&s.deprecated),
        );
        src.line(&format!("export class {class} {{"));
        src.line("readonly #server: $wsp.Broadcaster;");
        src.blank();
        src.line("constructor(server: $wsp.Broadcaster) {");
        src.line("this.#server = server;");
        src.line("}");
        for m in s
            .client_methods
            .iter()
            .filter(|m| m.kind == MethodKind::Notify)
        {
            src.blank();
            self.method_doc(src, m);
            let mut params = self.params_decl(m, true);
            params.push("filter?: (peer: $wsp.Peer) => boolean".to_owned());
            let args: Vec<String> = m
                .params
                .iter()
                .map(|p| self.encode_expr(&p.ty, &param(&p.name), 0))
                .collect();
            signature(
                src,
                &format!("{}(", member(&m.name)),
                &params,
                "): number {",
            );
            call(
                src,
                "return this.#server.broadcast(",
                &[
                    lit(&s.client_method_path(m)),
                    format!("[{}]", args.join(", ")),
                    "filter".to_owned(),
                ],
                ");",
            );
            src.line("}");
        }
        src.line("}");
    }

    /// A `Converter` for a result, item or error type: the generated decoder itself, or a lambda.
    fn converter(&self, ty: &TypeRef) -> String {
        if let TypeRef::Named(id) = ty {
            return self.helper_ref("decode", *id);
        }
        let expr = self.decode_expr(ty, "v", "codec", 0);
        if expr.contains(", codec)") {
            format!("(v, codec) => {expr}")
        } else {
            format!("(v) => {expr}")
        }
    }

    /// The interface an application implements to serve one side.
    fn handler_interface(&self, src: &mut Source, s: &Service, side: Side, names: &SideNames) {
        let SideNames {
            iface: name,
            context,
            register,
            peer,
        } = names;
        src.doc(&format!(
            "The context handlers of `{name}` receive: `ctx.peer` calls the other side."
        ));
        src.line(&format!(
            "export type {context} = $wsp.TypedContext<{peer}>;"
        ));
        src.blank();
        let what = match side {
            Side::Server => format!("What a server implements to serve `{}`", s.qualified_name),
            Side::Callbacks => format!(
                "What a client implements to answer the `client {{ }}` calls of `{}`",
                s.qualified_name
            ),
        };
        src.doc_tagged(
            &format!(
                "{what} (register it with `{register}`). Throw `$wsp.ApplicationError` with a \
                 declared error value for typed errors."
            ),
            &deprecated_tags(&s.deprecated),
        );
        src.line(&format!("export interface {name} {{"));
        for (i, m) in Self::methods(s, side).iter().enumerate() {
            if i > 0 {
                src.blank();
            }
            self.method_doc(src, m);
            let mut params = self.params_decl(m, false);
            if let Some(input) = &m.input {
                let t = self.ts_type(&input.ty);
                params.push(format!("{}: AsyncIterable<{t}>", param(&input.name)));
            }
            params.push(format!("ctx: {context}"));
            let ret = match (m.kind, &m.returns) {
                (MethodKind::Notify, _) | (MethodKind::Rpc | MethodKind::ClientStream, None) => {
                    "void | Promise<void>".to_owned()
                }
                (MethodKind::Rpc | MethodKind::ClientStream, Some(t)) => {
                    let t = self.ts_type(t);
                    format!("{t} | Promise<{t}>")
                }
                (MethodKind::Stream | MethodKind::BidiStream, t) => {
                    let t = t.as_ref().map_or("void".to_owned(), |t| self.ts_type(t));
                    format!("AsyncIterable<{t}> | Iterable<{t}>")
                }
            };
            signature(
                src,
                &format!("{}(", interface_member(&m.name)),
                &params,
                &format!("): {ret};"),
            );
        }
        src.line("}");
    }

    /// `serveS(host, impl)` / `registerSCallbacks(host, impl)`.
    fn register_fn(&self, src: &mut Source, s: &Service, side: Side, names: &SideNames) {
        let SideNames {
            iface,
            context,
            register: fn_name,
            peer,
        } = names;
        let n = Names::of(s);
        let (service_name, what) = match side {
            Side::Server => (format!("{}.name", n.meta), "Serves"),
            Side::Callbacks => (format!("{}.clientName", n.meta), "Registers"),
        };
        src.doc_tagged(
            &format!(
                "{what} `{iface}` on a `WspServer`, a `Peer` or a `Client` (replacing an earlier \
                 registration)."
            ),
            &deprecated_tags(&s.deprecated),
        );
        let methods = Self::methods(s, side);
        let impl_name = if methods.is_empty() { "_impl" } else { "impl" };
        signature(
            src,
            &format!("export function {fn_name}("),
            &[
                "host: $wsp.ServiceHost".to_owned(),
                format!("{impl_name}: {iface}"),
            ],
            "): void {",
        );
        let make_peer = if peer == "$wsp.Caller" {
            "(p) => p".to_owned()
        } else {
            format!("(p) => new {peer}(p)")
        };
        if !methods.is_empty() {
            let head = format!("const ctx = (c: $wsp.CallContext): {context} =>");
            let body = format!("$wsp.codegen.typedContext(c, {make_peer});");
            if head.len() + body.len() < src.width_left() {
                src.line(&format!("{head} {body}"));
            } else {
                src.line(&head);
                src.indent();
                src.line(&body);
                src.dedent();
            }
        }
        src.line("host.addService(");
        src.line(&format!("{service_name},"));
        src.line("{");
        for m in methods {
            self.registration(src, m);
        }
        src.line("},");
        src.line(&format!("{}.fingerprint,", n.meta));
        src.line(");");
        src.line("}");
    }

    /// One `name: $wsp.codegen.unary(decode, run, encode, encodeError),` entry.
    fn registration(&self, src: &mut Source, m: &Method) {
        let decoded: Vec<String> = m
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let access = format!("a[{i}]");
                if p.is_optional() {
                    self.decode_expr(&p.ty, &access, "c.codec", 0)
                } else {
                    self.decode_required(&p.ty, &access, "c.codec", &p.name)
                }
            })
            .collect();
        let tuple = format!("[{}] as const", decoded.join(", "));
        let uses_c = tuple.contains("c.codec");
        let lambda_params = match (m.params.is_empty(), uses_c) {
            (true, _) => "()",
            (false, true) => "(a, c)",
            (false, false) => "(a)",
        };
        let decode = format!("{lambda_params} => {tuple}");
        let (helper, encode) = match m.kind {
            MethodKind::Notify => ("notify", None),
            MethodKind::Rpc => ("unary", m.returns.as_ref()),
            MethodKind::Stream => ("stream", m.returns.as_ref()),
            MethodKind::ClientStream => ("upload", m.returns.as_ref()),
            MethodKind::BidiStream => ("duplex", m.returns.as_ref()),
        };
        let mut args = vec![decode];
        match &m.input {
            Some(input) => {
                // The items' decoder, which checks each item as the arguments are checked (a
                // wrong one is INVALID_ARGUMENTS), then the run.
                let decode = if input.is_optional() {
                    self.decode_expr(&input.ty, "v", "codec", 0)
                } else {
                    self.decode_required(&input.ty, "v", "codec", &input.name)
                };
                let params = if decode.contains("codec") {
                    "(v, codec)"
                } else {
                    "(v)"
                };
                args.push(format!("{params} => {decode}"));
                args.push(format!(
                    "(a, items, c) => impl.{}(...a, items, ctx(c))",
                    m.name
                ));
            }
            None => args.push(format!("(a, c) => impl.{}(...a, ctx(c))", m.name)),
        }
        let encode = encode.filter(|t| self.needs.encodes(t)).map(|t| match t {
            // The encoder itself rather than a lambda around it.
            TypeRef::Named(id) => self.helper_ref("encode", *id),
            _ => format!("(r) => {}", self.encode_expr(t, "r", 0)),
        });
        let encode_error = m
            .throws
            .filter(|e| self.needs.encodes(&TypeRef::Named(*e)))
            .map(|e| self.helper_ref("encode", e));
        match (encode, encode_error) {
            (None, None) => {}
            (Some(enc), None) => args.push(enc),
            (enc, Some(err)) => {
                args.push(enc.unwrap_or_else(|| "undefined".to_owned()));
                args.push(err);
            }
        }
        call(
            src,
            &format!("{}: $wsp.codegen.{helper}(", key(&m.name)),
            &args,
            "),",
        );
    }
}

/// A method signature, on one line when it fits.
fn signature(src: &mut Source, open: &str, params: &[String], close: &str) {
    call(src, open, params, close);
}

/// `open` + comma-separated items + `close`, on one line when it fits, else one item per line.
fn call(src: &mut Source, open: &str, items: &[String], close: &str) {
    let one = format!("{open}{}{close}", items.join(", "));
    if one.len() <= src.width_left() || items.is_empty() {
        src.line(&one);
        return;
    }
    src.line(open);
    for item in items {
        item_line(src, item);
    }
    src.line(close);
}

/// One argument of a broken call, followed by a comma; an object literal (`{ a, b }`) or a
/// `=> [a, b] as const` tuple that does not fit is broken one element per line.
fn item_line(src: &mut Source, item: &str) {
    if item.len() < src.width_left() {
        src.line(&format!("{item},"));
    } else if let Some(inner) = item.strip_prefix("{ ").and_then(|i| i.strip_suffix(" }")) {
        src.line("{");
        for part in split_top_level(inner) {
            src.line(&format!("{part},"));
        }
        src.line("},");
    } else if let Some((head, inner)) = item
        .strip_suffix("] as const")
        .and_then(|i| i.split_once("=> ["))
    {
        src.line(&format!("{head}=> ["));
        for part in split_top_level(inner) {
            src.line(&format!("{part},"));
        }
        src.line("] as const,");
    } else {
        src.line(&format!("{item},"));
    }
}
