//! Name resolution: the symbol table over all loaded files, type lookup with "did you mean", and
//! the construction of the [`Model`] once validation found nothing wrong.

use std::collections::HashMap;

use crate::ast::{self, Item, ItemKind, MethodKindDecl, TypeExpr, TypeExprKind};
use crate::diagnostic::{Diagnostic, SourceMap, Span};
use crate::loader::{Error, LoadedFile};
use crate::model::{
    Deprecated, Field, File, Method, MethodKind, Model, Primitive, Service, ServiceId, TypeDef,
    TypeId, TypeKind, TypeRef, Variant,
};

/// What a top-level declaration declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeclKind {
    Struct,
    Enum,
    Error,
    Service,
}

impl DeclKind {
    /// The word with its article: "a struct", "an enum".
    pub(crate) fn with_article(self) -> &'static str {
        match self {
            DeclKind::Struct => "a struct",
            DeclKind::Enum => "an enum",
            DeclKind::Error => "an error",
            DeclKind::Service => "a service",
        }
    }

    pub(crate) fn word(self) -> &'static str {
        match self {
            DeclKind::Struct => "struct",
            DeclKind::Enum => "enum",
            DeclKind::Error => "error",
            DeclKind::Service => "service",
        }
    }
}

/// A top-level declaration accepted into the symbol table.
pub(crate) struct Decl<'a> {
    /// Index into [`Ctx::files`].
    pub(crate) file: usize,
    pub(crate) item: &'a Item,
    pub(crate) qualified: String,
    pub(crate) kind: DeclKind,
    /// The `TypeId` (for types) or `ServiceId` (for services) number.
    pub(crate) id: usize,
}

/// Everything the checks need: the files, and every declaration by qualified name.
pub(crate) struct Ctx<'a> {
    pub(crate) files: &'a [LoadedFile],
    pub(crate) decls: Vec<Decl<'a>>,
    by_name: HashMap<String, usize>,
    /// Index into `decls` of each `TypeId`.
    type_decls: Vec<usize>,
}

impl<'a> Ctx<'a> {
    /// Builds the symbol table; returns it with one diagnostic per duplicate definition.
    pub(crate) fn new(files: &'a [LoadedFile]) -> (Self, Vec<Diagnostic>) {
        let mut ctx = Ctx {
            files,
            decls: Vec::new(),
            by_name: HashMap::new(),
            type_decls: Vec::new(),
        };
        let mut diagnostics = Vec::new();
        let mut services = 0;
        for (file_idx, file) in files.iter().enumerate() {
            for item in &file.ast.items {
                let qualified = format!("{}.{}", file.ast.package.name, item.name.name);
                if let Some(&first) = ctx.by_name.get(&qualified) {
                    let first = &ctx.decls[first];
                    diagnostics.push(
                        Diagnostic::error(
                            format!("`{qualified}` is defined more than once"),
                            item.name.span,
                        )
                        .with_label("defined again here")
                        .with_note(
                            format!("first defined as {} here", first.kind.with_article()),
                            Some(first.item.name.span),
                        ),
                    );
                    continue;
                }
                let kind = match item.kind {
                    ItemKind::Struct(_) => DeclKind::Struct,
                    ItemKind::Enum(_) => DeclKind::Enum,
                    ItemKind::Error(_) => DeclKind::Error,
                    ItemKind::Service(_) => DeclKind::Service,
                };
                let id = if kind == DeclKind::Service {
                    services += 1;
                    services - 1
                } else {
                    ctx.type_decls.push(ctx.decls.len());
                    ctx.type_decls.len() - 1
                };
                ctx.by_name.insert(qualified.clone(), ctx.decls.len());
                ctx.decls.push(Decl {
                    file: file_idx,
                    item,
                    qualified,
                    kind,
                    id,
                });
            }
        }
        (ctx, diagnostics)
    }

    /// The declaration of a type id.
    pub(crate) fn type_decl(&self, id: TypeId) -> &Decl<'a> {
        &self.decls[self.type_decls[id.0]]
    }

    /// Whether `decl` can be named from file `from` (declared there or in a file it imports).
    fn visible(&self, from: usize, decl: &Decl<'_>) -> bool {
        decl.file == from || self.files[from].imports.contains(&self.files[decl.file].id)
    }

    /// Looks up a type or service name written in file `from`.
    pub(crate) fn lookup(
        &self,
        from: usize,
        name: &str,
        span: Span,
    ) -> Result<&Decl<'a>, Box<Diagnostic>> {
        let package = &self.files[from].ast.package.name;
        let own = format!("{package}.{name}");
        let candidates = [own.as_str(), name];
        for qualified in candidates {
            if let Some(&i) = self.by_name.get(qualified) {
                let decl = &self.decls[i];
                if self.visible(from, decl) {
                    return Ok(decl);
                }
                let other = &self.files[decl.file];
                return Err(Box::new(
                    Diagnostic::error(format!("unknown type `{name}`"), span)
                        .with_label("not declared in this file or the files it imports")
                        .with_help(format!(
                            "import the file that declares it (package `{}`)",
                            other.ast.package.name
                        ))
                        .with_note(
                            format!("`{qualified}` is declared here"),
                            Some(decl.item.name.span),
                        ),
                ));
            }
        }
        let mut d =
            Diagnostic::error(format!("unknown type `{name}`"), span).with_label("not found");
        let same_name = self
            .decls
            .iter()
            .find(|d| d.item.name.name == name && d.kind != DeclKind::Service);
        if let Some(other) = same_name {
            let hint = if self.visible(from, other) {
                format!(
                    "did you mean `{}`? Types of other packages are written qualified",
                    other.qualified
                )
            } else {
                format!(
                    "`{}` is declared in a file this one does not import",
                    other.qualified
                )
            };
            d = d.with_help(hint);
        } else if let Some(suggestion) = self.suggest(from, name) {
            d = d.with_help(format!("did you mean `{suggestion}`?"));
        }
        Err(Box::new(d))
    }

    /// The closest visible name to `name`, if one is close enough.
    fn suggest(&self, from: usize, name: &str) -> Option<String> {
        let package = &self.files[from].ast.package.name;
        let mut names: Vec<String> = Primitive::ALL.iter().map(|p| p.name().to_owned()).collect();
        for decl in &self.decls {
            if decl.kind != DeclKind::Service && self.visible(from, decl) {
                let short = &decl.item.name.name;
                if self.files[decl.file].ast.package.name == *package {
                    names.push(short.clone());
                }
                names.push(decl.qualified.clone());
            }
        }
        let lower = name.to_lowercase();
        let mut best: Option<(usize, String)> = None;
        for candidate in names {
            let distance = if candidate.to_lowercase() == lower {
                0
            } else {
                strsim::levenshtein(name, &candidate)
            };
            let limit = (name.chars().count().max(candidate.chars().count()) / 3).max(1);
            if distance <= limit && best.as_ref().is_none_or(|(d, _)| distance < *d) {
                best = Some((distance, candidate));
            }
        }
        best.map(|(_, n)| n)
    }

    /// Resolves a written type in file `from`, reporting every unknown name in it.
    pub(crate) fn resolve_type(
        &self,
        from: usize,
        expr: &TypeExpr,
    ) -> Result<TypeRef, Vec<Diagnostic>> {
        match &expr.kind {
            TypeExprKind::Path(name) => {
                if let Some(p) = Primitive::from_name(name) {
                    return Ok(TypeRef::Primitive(p));
                }
                let decl = self.lookup(from, name, expr.span).map_err(|d| vec![*d])?;
                if decl.kind == DeclKind::Service {
                    return Err(vec![
                        Diagnostic::error(format!("`{name}` is a service, not a type"), expr.span)
                            .with_label("expected a type"),
                    ]);
                }
                Ok(TypeRef::Named(TypeId(decl.id)))
            }
            TypeExprKind::List(inner) => {
                Ok(TypeRef::List(Box::new(self.resolve_type(from, inner)?)))
            }
            TypeExprKind::Optional(inner) => {
                Ok(TypeRef::Optional(Box::new(self.resolve_type(from, inner)?)))
            }
            TypeExprKind::Map(k, v) => {
                match (self.resolve_type(from, k), self.resolve_type(from, v)) {
                    (Ok(k), Ok(v)) => Ok(TypeRef::Map(Box::new(k), Box::new(v))),
                    (k, v) => Err(k.err().into_iter().chain(v.err()).flatten().collect()),
                }
            }
        }
    }
}

/// Checks everything and, when nothing is wrong, builds the model.
/// `diagnostics` holds problems found while loading that did not stop it (import cycles).
pub(crate) fn resolve(
    sources: SourceMap,
    files: Vec<LoadedFile>,
    mut diagnostics: Vec<Diagnostic>,
) -> Result<Model, Error> {
    let (ctx, duplicates) = Ctx::new(&files);
    let mut found = duplicates;
    found.extend(crate::validate::validate(&ctx));
    found.sort_by_key(|d| d.span.map(|s| (s.file, s.start)));
    diagnostics.extend(found);
    if !diagnostics.is_empty() {
        return Err(Error::new(diagnostics, sources));
    }
    let mut model = build(&ctx, sources);
    crate::fingerprint::fill_fingerprints(&mut model);
    Ok(model)
}

/// Builds the model from a context that passed validation.
fn build(ctx: &Ctx<'_>, sources: SourceMap) -> Model {
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

fn field(ctx: &Ctx<'_>, file: usize, f: &ast::Field) -> Field {
    Field {
        name: f.name.name.clone(),
        ty: ctx
            .resolve_type(file, &f.ty)
            .expect("validation resolved every type"),
        docs: f.meta.docs.clone(),
        deprecated: deprecated(&f.meta),
        needs_box: false,
        span: f.span,
    }
}

fn method(ctx: &Ctx<'_>, file: usize, m: &ast::MethodDecl) -> Method {
    Method {
        name: m.name.name.clone(),
        kind: match m.kind {
            MethodKindDecl::Rpc => MethodKind::Rpc,
            MethodKindDecl::Stream => MethodKind::Stream,
            MethodKindDecl::Notify => MethodKind::Notify,
        },
        params: m.params.iter().map(|p| field(ctx, file, p)).collect(),
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
