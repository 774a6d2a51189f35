//! Validation: one small function per rule, each returning every problem it finds.

use std::collections::HashMap;

use heck::ToSnakeCase;

use crate::ast::{
    Field, Ident, ItemKind, Meta, MethodDecl, MethodKindDecl, StringLit, TypeExpr, TypeExprKind,
};
use crate::diagnostic::Diagnostic;
use crate::model::{Primitive, TypeRef};
use crate::symbols::{DeclKind, Symbols};

/// A check over the whole set of files.
type Check = fn(&Symbols<'_>) -> Vec<Diagnostic>;

/// Every check, in no particular order: the result is sorted by location.
const CHECKS: &[Check] = &[
    check_unknown_types,
    check_map_keys,
    check_duplicate_members,
    check_case_collisions,
    check_reserved_names,
    check_dollar_names,
    check_builtin_type_names,
    check_recursive_structs,
    check_throws,
    check_attributes,
    check_client_blocks,
    check_stream_params,
];

/// Runs every check; returns all diagnostics sorted by file and position.
pub(crate) fn validate(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = CHECKS.iter().flat_map(|check| check(ctx)).collect();
    out.sort_by_key(|d| d.span.map(|s| (s.file, s.start)));
    out
}

/// Every type expression written at the top of a field, parameter or result, with its file.
fn type_exprs<'a>(ctx: &Symbols<'a>) -> Vec<(usize, &'a TypeExpr)> {
    let mut out = Vec::new();
    for decl in &ctx.decls {
        let f = decl.file;
        match &decl.item.kind {
            ItemKind::Struct(s) => out.extend(s.fields.iter().map(|x| (f, &x.ty))),
            ItemKind::Enum(e) | ItemKind::Error(e) => {
                out.extend(
                    e.variants
                        .iter()
                        .flat_map(|v| &v.fields)
                        .map(|x| (f, &x.ty)),
                );
            }
            ItemKind::Service(_) => {
                for m in methods(decl.item) {
                    out.extend(m.params.iter().map(|x| (f, &x.ty)));
                    out.extend(m.returns.iter().map(|r| (f, r)));
                }
            }
        }
    }
    out
}

/// Server and client methods of a service item.
fn methods(item: &crate::ast::Item) -> impl Iterator<Item = &MethodDecl> {
    let (server, blocks) = match &item.kind {
        ItemKind::Service(s) => (&s.methods[..], &s.client_blocks[..]),
        _ => (&[][..], &[][..]),
    };
    server.iter().chain(blocks.iter().flat_map(|b| &b.methods))
}

/// A set of names that must be distinct: the fields of a struct, the methods of a service…
struct Scope<'a> {
    /// "field", "variant", "method", "parameter".
    what: &'static str,
    /// "struct `Point`", "method `area`".
    owner: String,
    names: Vec<&'a Ident>,
    reserved: &'a [StringLit],
}

fn scopes<'a>(ctx: &Symbols<'a>) -> Vec<Scope<'a>> {
    let mut out = Vec::new();
    let fields = |fs: &'a [Field]| fs.iter().map(|f| &f.name).collect::<Vec<_>>();
    for decl in &ctx.decls {
        let item = decl.item;
        let owner = format!("{} `{}`", decl.kind.word(), item.name.name);
        match &item.kind {
            ItemKind::Struct(s) => {
                out.push(Scope {
                    what: "field",
                    owner,
                    names: fields(&s.fields),
                    reserved: &s.reserved,
                });
            }
            ItemKind::Enum(e) | ItemKind::Error(e) => {
                for v in &e.variants {
                    let owner = format!("variant `{}::{}`", item.name.name, v.name.name);
                    out.push(Scope {
                        what: "field",
                        owner,
                        names: fields(&v.fields),
                        reserved: &[],
                    });
                }
                let names = e.variants.iter().map(|v| &v.name).collect();
                out.push(Scope {
                    what: "variant",
                    owner,
                    names,
                    reserved: &e.reserved,
                });
            }
            ItemKind::Service(s) => {
                let names = s.methods.iter().map(|m| &m.name).collect();
                out.push(Scope {
                    what: "method",
                    owner: owner.clone(),
                    names,
                    reserved: &s.reserved,
                });
                for b in &s.client_blocks {
                    let names = b.methods.iter().map(|m| &m.name).collect();
                    let owner = format!("the `client` block of {owner}");
                    out.push(Scope {
                        what: "method",
                        owner,
                        names,
                        reserved: &b.reserved,
                    });
                }
                for m in methods(item) {
                    let owner = format!("method `{}`", m.name.name);
                    out.push(Scope {
                        what: "parameter",
                        owner,
                        names: fields(&m.params),
                        reserved: &[],
                    });
                }
            }
        }
    }
    out
}

/// Every name declared anywhere: types, services, fields, variants, methods, parameters.
fn declared_names<'a>(ctx: &Symbols<'a>) -> Vec<&'a Ident> {
    let mut out: Vec<&Ident> = ctx.decls.iter().map(|d| &d.item.name).collect();
    out.extend(scopes(ctx).into_iter().flat_map(|s| s.names));
    out
}

/// Every attribute list: on items, fields, variants, methods and parameters.
fn metas<'a>(ctx: &Symbols<'a>) -> Vec<&'a Meta> {
    let mut out = Vec::new();
    for decl in &ctx.decls {
        let item = decl.item;
        out.push(&item.meta);
        match &item.kind {
            ItemKind::Struct(s) => out.extend(s.fields.iter().map(|f| &f.meta)),
            ItemKind::Enum(e) | ItemKind::Error(e) => {
                for v in &e.variants {
                    out.push(&v.meta);
                    out.extend(v.fields.iter().map(|f| &f.meta));
                }
            }
            ItemKind::Service(_) => {
                for m in methods(item) {
                    out.push(&m.meta);
                    out.extend(m.params.iter().map(|f| &f.meta));
                }
            }
        }
    }
    out
}

/// The type as written, for messages.
fn show(expr: &TypeExpr) -> String {
    match &expr.kind {
        TypeExprKind::Path(p) => p.clone(),
        TypeExprKind::List(t) => format!("list<{}>", show(t)),
        TypeExprKind::Map(k, v) => format!("map<{}, {}>", show(k), show(v)),
        TypeExprKind::Optional(t) => format!("{}?", show(t)),
    }
}

/// Unknown type names (with "did you mean"), and services used as types.
fn check_unknown_types(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    type_exprs(ctx)
        .into_iter()
        .filter_map(|(f, e)| ctx.resolve_type(f, e).err())
        .flatten()
        .collect()
}

/// Map keys must be strings or integers.
fn check_map_keys(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    fn walk(ctx: &Symbols<'_>, file: usize, expr: &TypeExpr, out: &mut Vec<Diagnostic>) {
        match &expr.kind {
            TypeExprKind::Path(_) => {}
            TypeExprKind::List(t) | TypeExprKind::Optional(t) => walk(ctx, file, t, out),
            TypeExprKind::Map(k, v) => {
                let valid = match ctx.resolve_type(file, k) {
                    Ok(TypeRef::Primitive(p)) => p.is_valid_map_key(),
                    Ok(_) => false,
                    Err(_) => true, // reported as an unknown type
                };
                if !valid {
                    out.push(
                        Diagnostic::error(format!("invalid map key type `{}`", show(k)), k.span)
                            .with_label("not a string or integer type")
                            .with_help("map keys must be `string` or one of the integer types (`i8` … `u64`)"),
                    );
                }
                walk(ctx, file, k, out);
                walk(ctx, file, v, out);
            }
        }
    }
    let mut out = Vec::new();
    for (f, e) in type_exprs(ctx) {
        walk(ctx, f, e, &mut out);
    }
    out
}

/// Two fields, variants, methods or parameters with the same name in one scope.
fn check_duplicate_members(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for scope in scopes(ctx) {
        let mut first: HashMap<&str, &Ident> = HashMap::new();
        for name in scope.names {
            if let Some(prev) = first.get(name.name.as_str()) {
                out.push(
                    Diagnostic::error(
                        format!(
                            "duplicate {} `{}` in {}",
                            scope.what, name.name, scope.owner
                        ),
                        name.span,
                    )
                    .with_label("defined again here")
                    .with_note("first defined here", Some(prev.span)),
                );
            } else {
                first.insert(&name.name, name);
            }
        }
    }
    out
}

/// Distinct names that generated code would spell the same (`fooBar` and `foo_bar`).
fn check_case_collisions(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut groups: Vec<(String, String, Vec<&Ident>)> = scopes(ctx)
        .into_iter()
        .map(|s| (s.what.to_owned(), s.owner, s.names))
        .collect();
    // Types and services of one package share a namespace in generated code.
    let mut packages: Vec<(String, Vec<&Ident>)> = Vec::new();
    for decl in &ctx.decls {
        let package = &ctx.files[decl.file].ast.package.name;
        match packages.iter_mut().find(|(p, _)| p == package) {
            Some((_, names)) => names.push(&decl.item.name),
            None => packages.push((package.clone(), vec![&decl.item.name])),
        }
    }
    for (package, names) in packages {
        groups.push((
            "declaration".to_owned(),
            format!("package `{package}`"),
            names,
        ));
    }
    let mut out = Vec::new();
    for (what, owner, names) in groups {
        let mut first: HashMap<String, &Ident> = HashMap::new();
        for name in names {
            let key = name.name.to_snake_case();
            match first.get(&key) {
                Some(prev) if prev.name != name.name => out.push(
                    Diagnostic::error(
                        format!(
                            "{what} names `{}` and `{}` in {owner} collide after case conversion",
                            prev.name, name.name
                        ),
                        name.span,
                    )
                    .with_label(format!("both become `{key}`"))
                    .with_note(format!("`{}` is declared here", prev.name), Some(prev.span))
                    .with_help("generated Rust and TypeScript code converts names to its own case; rename one"),
                ),
                Some(_) => {}
                None => {
                    first.insert(key, name);
                }
            }
        }
    }
    out
}

/// A field, variant or method that uses a name listed in `reserved`.
fn check_reserved_names(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for scope in scopes(ctx) {
        for name in &scope.names {
            if let Some(r) = scope.reserved.iter().find(|r| r.value == name.name) {
                out.push(
                    Diagnostic::error(format!("{} name `{}` is reserved in {}", scope.what, name.name, scope.owner), name.span)
                        .with_label("reserved name")
                        .with_note("reserved here", Some(r.span))
                        .with_help("a reserved name belonged to something removed in an earlier version; pick another name"),
                );
            }
        }
    }
    out
}

/// Names starting with `$` (the protocol uses `$type`).
fn check_dollar_names(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    declared_names(ctx)
        .into_iter()
        .filter(|n| n.name.starts_with('$'))
        .map(|n| {
            Diagnostic::error(format!("name `{}` starts with `$`", n.name), n.span)
                .with_label("`$` names are reserved by the protocol")
                .with_help(format!(
                    "rename it, e.g. `{}`",
                    n.name.trim_start_matches('$')
                ))
        })
        .collect()
}

/// Declarations named like a built-in type could never be referred to.
fn check_builtin_type_names(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    ctx.decls
        .iter()
        .map(|d| &d.item.name)
        .filter(|n| Primitive::from_name(&n.name).is_some() || n.name == "list" || n.name == "map")
        .map(|n| {
            Diagnostic::error(
                format!("`{}` is a built-in type and cannot be declared", n.name),
                n.span,
            )
            .with_label("built-in name")
        })
        .collect()
}

/// A struct that contains itself through required, direct fields only: no value could be finite.
fn check_recursive_structs(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    // Edges: struct decl index -> (field, struct decl index) for required fields of struct type.
    let index: HashMap<&str, usize> = ctx
        .decls
        .iter()
        .enumerate()
        .map(|(i, d)| (d.qualified.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<(&Field, usize)>> = vec![Vec::new(); ctx.decls.len()];
    for (i, decl) in ctx.decls.iter().enumerate() {
        let ItemKind::Struct(s) = &decl.item.kind else {
            continue;
        };
        for field in &s.fields {
            if let TypeExprKind::Path(_) = field.ty.kind {
                if let Ok(TypeRef::Named(id)) = ctx.resolve_type(decl.file, &field.ty) {
                    let target = ctx.type_decl(id);
                    if target.kind == DeclKind::Struct {
                        edges[i].push((field, index[target.qualified.as_str()]));
                    }
                }
            }
        }
    }
    let mut reported = vec![false; ctx.decls.len()];
    let mut out = Vec::new();
    for start in 0..ctx.decls.len() {
        if reported[start] || edges[start].is_empty() {
            continue;
        }
        // Breadth-first search for a path back to `start`, remembering how each node was reached.
        let mut came_from: Vec<Option<(usize, &Field)>> = vec![None; ctx.decls.len()];
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        while let Some(node) = queue.pop_front() {
            for &(field, next) in &edges[node] {
                if next == start {
                    closing = Some((node, field));
                    queue.clear();
                    break;
                }
                if came_from[next].is_none() {
                    came_from[next] = Some((node, field));
                    queue.push_back(next);
                }
            }
        }
        let Some((mut node, last_field)) = closing else {
            continue;
        };
        let mut path = vec![(node, last_field)];
        while node != start {
            let (prev, field) = came_from[node].expect("every node on the path was reached");
            path.push((prev, field));
            node = prev;
        }
        path.reverse();
        let chain: Vec<String> = path
            .iter()
            .map(|(n, f)| format!("`{}.{}`", ctx.decls[*n].item.name.name, f.name.name))
            .collect();
        for (n, _) in &path {
            reported[*n] = true;
        }
        let name = &ctx.decls[start].item.name.name;
        out.push(
            Diagnostic::error(
                format!("struct `{name}` contains itself through required fields"),
                path[0].1.span,
            )
            .with_label(format!("cycle: {} → `{name}`", chain.join(" → ")))
            .with_help(
                "make a field on the cycle optional (`?`) or a list, so that a value can end",
            ),
        );
    }
    out
}

/// `throws` must name an `error` type.
fn check_throws(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for decl in &ctx.decls {
        for m in methods(decl.item) {
            let Some(t) = &m.throws else { continue };
            match ctx.lookup(decl.file, &t.name, t.span) {
                Err(d) => out.push(*d),
                Ok(target) if target.kind != DeclKind::Error => out.push(
                    Diagnostic::error(
                        format!(
                            "`{}` is {}, not an error type",
                            t.name,
                            target.kind.with_article()
                        ),
                        t.span,
                    )
                    .with_label("`throws` needs an `error` type")
                    .with_note(
                        format!("`{}` is declared here", t.name),
                        Some(target.item.name.span),
                    )
                    .with_help(format!(
                        "declare it as `error {} {{ ... }}` with one variant per failure",
                        target.item.name.name
                    )),
                ),
                Ok(_) => {}
            }
        }
    }
    out
}

/// Only `@deprecated`, at most once, with at most one reason.
fn check_attributes(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for meta in metas(ctx) {
        let mut seen = false;
        for a in &meta.attributes {
            if a.name.name != "deprecated" {
                out.push(
                    Diagnostic::error(format!("unknown attribute `@{}`", a.name.name), a.name.span)
                        .with_help(
                            "the only attribute is `@deprecated` or `@deprecated(\"reason\")`",
                        ),
                );
                continue;
            }
            if std::mem::replace(&mut seen, true) {
                out.push(
                    Diagnostic::error("duplicate attribute `@deprecated`", a.span)
                        .with_label("given again here"),
                );
            }
            if a.args.len() > 1 {
                out.push(
                    Diagnostic::error("`@deprecated` takes at most one argument", a.args[1].span)
                        .with_help("write `@deprecated(\"reason\")`"),
                );
            }
        }
    }
    out
}

/// A service has at most one `client { }` block.
fn check_client_blocks(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for decl in &ctx.decls {
        if let ItemKind::Service(s) = &decl.item.kind {
            for extra in s.client_blocks.iter().skip(1) {
                out.push(
                    Diagnostic::error(
                        format!(
                            "service `{}` has more than one `client` block",
                            decl.item.name.name
                        ),
                        extra.span,
                    )
                    .with_note("the first one is here", Some(s.client_blocks[0].span))
                    .with_help("put all client methods in one block"),
                );
            }
        }
    }
    out
}

/// `name: stream T` only as the last parameter of an `rpc`.
fn check_stream_params(ctx: &Symbols<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for decl in &ctx.decls {
        for m in methods(decl.item) {
            let last = m.params.len().saturating_sub(1);
            for (i, p) in m.params.iter().enumerate() {
                let Some(stream) = p.stream else { continue };
                if m.kind == MethodKindDecl::Notify {
                    out.push(
                        Diagnostic::error(
                            format!("notification `{}` cannot take a stream", m.name.name),
                            stream,
                        )
                        .with_label("a notification is one message")
                        .with_help("make it an `rpc` to send a stream of items"),
                    );
                } else if i != last {
                    out.push(
                        Diagnostic::error(
                            format!(
                                "the stream parameter `{}` of `{}` must be the last",
                                p.name.name, m.name.name
                            ),
                            stream,
                        )
                        .with_label("a method takes at most one stream, after its other parameters")
                        .with_help(format!(
                            "move `{}` to the end of the parameter list",
                            p.name.name
                        )),
                    );
                }
            }
        }
    }
    out
}
