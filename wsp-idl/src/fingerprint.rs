//! Service fingerprints: a hash of a canonical text of the service and every type it reaches.
//!
//! The canonical form leaves out docs, comments, attributes (`@deprecated`), spans and
//! formatting, so reformatting or documenting a schema keeps the fingerprint. It is one line per
//! declaration or member, each ending in `\n`, two-space indented members:
//!
//! ```text
//! service geometry.Geometry
//!   reserved "old"
//!   rpc area(shape: geometry.Shape) -> f64 throws geometry.GeometryError
//!   notify log(line: string)
//!   stream walk(shape: geometry.Shape, steps: u32) -> geometry.Point
//!   rpc reset()
//! client
//!   rpc confirm(question: string) -> bool
//! struct geometry.Point
//!   x: f64
//!   label: string?
//! enum geometry.Shape
//!   Circle { center: geometry.Point, radius: f64 }
//!   Empty
//! error geometry.GeometryError
//!   TooLarge
//! ```
//!
//! - The `client` line and its members appear only when the `client` block declares a method or
//!   a reserved name (an empty block is the same as none).
//! - Methods, fields, variants and parameters keep declaration order; `reserved` lines list the
//!   names sorted, quoted as in the schema, and come first in their block.
//! - Types are every type reached from a parameter, result or `throws` (transitively), sorted by
//!   qualified name; every type name is written qualified; `list<T>`, `map<K, V>` and `T?` as in
//!   the schema.
//!
//! The fingerprint is the first 16 lowercase hex digits of the SHA-256 of this text (UTF-8).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::model::{Field, Method, Model, ServiceId, TypeKind, TypeRef};

/// The canonical text of a service that its fingerprint hashes (see the module docs).
pub fn canonical_form(model: &Model, service: ServiceId) -> String {
    let s = model.service(service);
    let mut out = format!("service {}\n", s.qualified_name);
    reserved(&mut out, &s.reserved);
    for m in &s.methods {
        method(&mut out, model, m);
    }
    if !s.client_methods.is_empty() || !s.client_reserved.is_empty() {
        out.push_str("client\n");
        reserved(&mut out, &s.client_reserved);
        for m in &s.client_methods {
            method(&mut out, model, m);
        }
    }
    let mut types = model.reachable_types(service);
    types.sort_by(|a, b| {
        model
            .type_def(*a)
            .qualified_name
            .cmp(&model.type_def(*b).qualified_name)
    });
    for id in types {
        let t = model.type_def(id);
        let keyword = match t.kind {
            TypeKind::Struct(_) => "struct",
            TypeKind::Enum(_) => "enum",
            TypeKind::Error(_) => "error",
        };
        let _ = writeln!(out, "{keyword} {}", t.qualified_name);
        reserved(&mut out, &t.reserved);
        match &t.kind {
            TypeKind::Struct(fields) => {
                for f in fields {
                    let _ = writeln!(out, "  {}", field(model, f));
                }
            }
            TypeKind::Enum(variants) | TypeKind::Error(variants) => {
                for v in variants {
                    if v.is_unit() {
                        let _ = writeln!(out, "  {}", v.name);
                    } else {
                        let _ = writeln!(out, "  {} {{ {} }}", v.name, fields(model, &v.fields));
                    }
                }
            }
        }
    }
    out
}

/// The fingerprint of a service: the first 16 hex digits of the SHA-256 of
/// [`canonical_form`].
pub fn fingerprint(model: &Model, service: ServiceId) -> String {
    let digest = Sha256::digest(canonical_form(model, service).as_bytes());
    digest.iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Sets [`crate::Service::fingerprint`] on every service.
pub(crate) fn fill_fingerprints(model: &mut Model) {
    for i in 0..model.services.len() {
        let fp = fingerprint(model, ServiceId(i));
        model.services[i].fingerprint = fp;
    }
}

fn reserved(out: &mut String, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let _ = writeln!(out, "  reserved {}", quoted.join(", "));
}

fn method(out: &mut String, model: &Model, m: &Method) {
    let _ = write!(
        out,
        "  {} {}({})",
        m.kind.keyword(),
        m.name,
        fields(model, &m.params)
    );
    if let Some(input) = &m.input {
        // Inside the parentheses, as written: `(a: u32, items: stream T)`.
        out.pop();
        let sep = if m.params.is_empty() { "" } else { ", " };
        let _ = write!(
            out,
            "{sep}{}: stream {})",
            input.name,
            type_text(model, &input.ty)
        );
    }
    if let Some(r) = &m.returns {
        let _ = write!(out, " -> {}", type_text(model, r));
    }
    if let Some(t) = m.throws {
        let _ = write!(out, " throws {}", model.type_def(t).qualified_name);
    }
    out.push('\n');
}

fn fields(model: &Model, fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| field(model, f))
        .collect::<Vec<_>>()
        .join(", ")
}

fn field(model: &Model, f: &Field) -> String {
    format!("{}: {}", f.name, type_text(model, &f.ty))
}

/// A type written with qualified names, as in the schema.
pub fn type_text(model: &Model, ty: &TypeRef) -> String {
    match ty {
        TypeRef::Primitive(p) => p.name().to_owned(),
        TypeRef::List(t) => format!("list<{}>", type_text(model, t)),
        TypeRef::Map(k, v) => format!("map<{}, {}>", type_text(model, k), type_text(model, v)),
        TypeRef::Optional(t) => format!("{}?", type_text(model, t)),
        TypeRef::Named(id) => model.type_def(*id).qualified_name.clone(),
    }
}
