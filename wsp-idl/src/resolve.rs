//! The construction of the [`Model`] from the symbol table, once validation found nothing wrong:
//! every type reference resolved to its id, fields that need boxing marked.

use crate::ast::{self, ItemKind, MethodKindDecl};
use crate::diagnostic::SourceMap;
use crate::model::{
    Deprecated, Field, File, Method, MethodKind, Model, Service, ServiceId, TypeDef, TypeId,
    TypeKind, TypeRef, Variant,
};
use crate::symbols::Symbols;

/// Builds the model from a context that passed validation.
pub(crate) fn build(ctx: &Symbols<'_>, sources: SourceMap) -> Model {
    let mut model = Model {
        files: Vec::new(),
        types: Vec::new(),
        services: Vec::new(),
        sources,
    };
    for file in ctx.files {
        model.files.push(File {
            id: file.id,
            path: model.sources.file(file.id).path.clone(),
            package: file.ast.package.name.clone(),
            docs: file.ast.docs.clone(),
            imports: file.imports.clone(),
            types: Vec::new(),
            services: Vec::new(),
            package_span: file.ast.package.span,
        });
    }
    for decl in &ctx.decls {
        let item = decl.item;
        let file = &mut model.files[decl.file];
        let common = (
            item.name.name.clone(),
            file.package.clone(),
            decl.qualified.clone(),
            file.id,
            item.meta.docs.clone(),
            deprecated(&item.meta),
        );
        let (name, package, qualified_name, file_id, docs, deprecated) = common;
        let types = |t: &ast::Field| field(ctx, decl.file, t);
        match &item.kind {
            ItemKind::Service(s) => {
                let id = ServiceId(decl.id);
                file.services.push(id);
                let methods =
                    |ms: &[ast::MethodDecl]| ms.iter().map(|m| method(ctx, decl.file, m)).collect();
                let client = s.client_blocks.first();
                model.services.push(Service {
                    id,
                    name,
                    package,
                    qualified_name,
                    file: file_id,
                    docs,
                    deprecated,
                    methods: methods(&s.methods),
                    client_methods: client.map(|c| methods(&c.methods)).unwrap_or_default(),
                    client_docs: client.map(|c| c.docs.clone()).unwrap_or_default(),
                    reserved: strings(&s.reserved),
                    client_reserved: client.map(|c| strings(&c.reserved)).unwrap_or_default(),
                    fingerprint: String::new(),
                    span: item.span,
                    name_span: item.name.span,
                });
            }
            other => {
                let id = TypeId(decl.id);
                file.types.push(id);
                let variants = |e: &ast::EnumDecl| -> Vec<Variant> {
                    e.variants
                        .iter()
                        .map(|v| Variant {
                            name: v.name.name.clone(),
                            fields: v.fields.iter().map(types).collect(),
                            docs: v.meta.docs.clone(),
                            deprecated: self::deprecated(&v.meta),
                            span: v.span,
                            name_span: v.name.span,
                        })
                        .collect()
                };
                let (kind, reserved) = match other {
                    ItemKind::Struct(s) => (
                        TypeKind::Struct(s.fields.iter().map(types).collect()),
                        &s.reserved,
                    ),
                    ItemKind::Enum(e) => (TypeKind::Enum(variants(e)), &e.reserved),
                    ItemKind::Error(e) => (TypeKind::Error(variants(e)), &e.reserved),
                    ItemKind::Service(_) => unreachable!("services are handled above"),
                };
                model.types.push(TypeDef {
                    id,
                    name,
                    package,
                    qualified_name,
                    file: file_id,
                    docs,
                    deprecated,
                    kind,
                    reserved: strings(reserved),
                    span: item.span,
                    name_span: item.name.span,
                });
            }
        }
    }
    mark_boxed_fields(&mut model);
    model
}

fn strings(lits: &[ast::StringLit]) -> Vec<String> {
    lits.iter().map(|s| s.value.clone()).collect()
}

fn deprecated(meta: &ast::Meta) -> Option<Deprecated> {
    meta.attributes
        .iter()
        .find(|a| a.name.name == "deprecated")
        .map(|a| Deprecated {
            reason: a.args.first().map(|s| s.value.clone()),
        })
}

fn field(ctx: &Symbols<'_>, file: usize, f: &ast::Field) -> Field {
    Field {
        name: f.name.name.clone(),
        ty: ctx
            .resolve_type(file, &f.ty)
            .expect("validation resolved every type"),
        docs: f.meta.docs.clone(),
        deprecated: deprecated(&f.meta),
        needs_box: false,
        span: f.span,
        name_span: f.name.span,
        type_span: f.ty.span,
    }
}

fn method(ctx: &Symbols<'_>, file: usize, m: &ast::MethodDecl) -> Method {
    // Validation allows `stream` only on the last parameter of an rpc.
    let input = m
        .params
        .iter()
        .find(|p| p.stream.is_some())
        .map(|p| field(ctx, file, p));
    Method {
        name: m.name.name.clone(),
        kind: match (m.kind, input.is_some()) {
            (MethodKindDecl::Rpc, false) => MethodKind::Rpc,
            (MethodKindDecl::Stream, false) => MethodKind::Stream,
            (MethodKindDecl::Rpc, true) => MethodKind::ClientStream,
            (MethodKindDecl::Stream, true) => MethodKind::BidiStream,
            (MethodKindDecl::Notify, _) => MethodKind::Notify,
        },
        params: m
            .params
            .iter()
            .filter(|p| p.stream.is_none())
            .map(|p| field(ctx, file, p))
            .collect(),
        input,
        returns: m.returns.as_ref().map(|r| {
            ctx.resolve_type(file, r)
                .expect("validation resolved every type")
        }),
        throws: m.throws.as_ref().map(|t| {
            TypeId(
                ctx.lookup(file, &t.name, t.span)
                    .expect("validation resolved every throws")
                    .id,
            )
        }),
        docs: m.meta.docs.clone(),
        deprecated: deprecated(&m.meta),
        span: m.span,
        name_span: m.name.span,
    }
}

/// The type a field holds inline (not behind a list or map): `T` for `T` and `T?`.
pub(crate) fn inline_named(ty: &TypeRef) -> Option<TypeId> {
    match ty.strip_optional() {
        TypeRef::Named(id) => Some(*id),
        _ => None,
    }
}

/// Sets [`Field::needs_box`] on every struct and variant field whose type leads back inline to the
/// type declaring it.
fn mark_boxed_fields(model: &mut Model) {
    let n = model.types.len();
    let edges: Vec<Vec<TypeId>> = model
        .types
        .iter()
        .map(|t| {
            all_fields(&t.kind)
                .filter_map(|f| inline_named(&f.ty))
                .collect()
        })
        .collect();
    let reaches = |from: TypeId, to: TypeId| -> bool {
        let mut seen = vec![false; n];
        let mut stack = vec![from];
        while let Some(t) = stack.pop() {
            if t == to {
                return true;
            }
            if !std::mem::replace(&mut seen[t.0], true) {
                stack.extend(&edges[t.0]);
            }
        }
        false
    };
    let mut boxed = Vec::new();
    for t in &model.types {
        for (i, f) in all_fields(&t.kind).enumerate() {
            if inline_named(&f.ty).is_some_and(|target| reaches(target, t.id)) {
                boxed.push((t.id, i));
            }
        }
    }
    for (id, i) in boxed {
        if let Some(f) = all_fields_mut(&mut model.types[id.0].kind).nth(i) {
            f.needs_box = true;
        }
    }
}

fn all_fields(kind: &TypeKind) -> Box<dyn Iterator<Item = &Field> + '_> {
    match kind {
        TypeKind::Struct(fields) => Box::new(fields.iter()),
        TypeKind::Enum(vs) | TypeKind::Error(vs) => Box::new(vs.iter().flat_map(|v| &v.fields)),
    }
}

fn all_fields_mut(kind: &mut TypeKind) -> Box<dyn Iterator<Item = &mut Field> + '_> {
    match kind {
        TypeKind::Struct(fields) => Box::new(fields.iter_mut()),
        TypeKind::Enum(vs) | TypeKind::Error(vs) => {
            Box::new(vs.iter_mut().flat_map(|v| &mut v.fields))
        }
    }
}
