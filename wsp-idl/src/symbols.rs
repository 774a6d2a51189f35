//! The symbol table over all loaded files: every top-level declaration by qualified name, and
//! type lookup with "did you mean". Validation reads it; the model is built from it.

use std::collections::HashMap;

use crate::ast::{Item, ItemKind, SchemaFile, TypeExpr, TypeExprKind};
use crate::diagnostic::{Diagnostic, FileId, Span};
use crate::model::{Primitive, TypeId, TypeRef};

/// A parsed file together with the ids of the files it imports.
pub(crate) struct LoadedFile {
    pub(crate) id: FileId,
    pub(crate) ast: SchemaFile,
    pub(crate) imports: Vec<FileId>,
}

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
    /// Index into [`Symbols::files`].
    pub(crate) file: usize,
    pub(crate) item: &'a Item,
    pub(crate) qualified: String,
    pub(crate) kind: DeclKind,
    /// The `TypeId` (for types) or `ServiceId` (for services) number.
    pub(crate) id: usize,
}

/// Everything the checks need: the files, and every declaration by qualified name.
pub(crate) struct Symbols<'a> {
    pub(crate) files: &'a [LoadedFile],
    pub(crate) decls: Vec<Decl<'a>>,
    by_name: HashMap<String, usize>,
    /// Index into `decls` of each `TypeId`.
    type_decls: Vec<usize>,
}

impl<'a> Symbols<'a> {
    /// Builds the symbol table; returns it with one diagnostic per duplicate definition.
    pub(crate) fn new(files: &'a [LoadedFile]) -> (Self, Vec<Diagnostic>) {
        let mut ctx = Symbols {
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
