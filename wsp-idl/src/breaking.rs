//! The breaking-change check: what in a new version of a schema breaks a peer built from the old
//! one, by the evolution rules of `docs/language.md` §7.
//!
//! Types and services are matched by qualified name, members by name, parameters by position
//! (they are positional on the wire). Every break is a [`Diagnostic`] on the new schema, with
//! the old declaration as a note; both models' files are in [`Breaks::sources`].
//!
//! ```
//! let load = |text: &str| {
//!     let mut loader = wsp_idl::Loader::new();
//!     loader.add_source("a.wsp", text);
//!     loader.load(&["a.wsp"]).unwrap()
//! };
//! let old = load("package a; struct P { x: f64 }");
//! let new = load("package a; struct P { x: f64, y: f64 }");
//! let breaks = wsp_idl::breaking::check(&old, &new);
//! assert_eq!(breaks.diagnostics().len(), 1);
//! assert!(breaks.rendered().starts_with("error: required field `a.P.y` was added"));
//! ```

use crate::diagnostic::{Diagnostic, FileId, SourceMap, Span, render_all};
use crate::fingerprint::type_text;
use crate::model::{Field, Method, MethodKind, Model, Service, TypeDef, TypeKind, TypeRef};

/// The breaking changes found between two versions of a schema.
#[derive(Debug, Clone)]
pub struct Breaks {
    diagnostics: Vec<Diagnostic>,
    sources: SourceMap,
}

impl Breaks {
    /// Every break, ordered by where it is in the new schema.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The new schema's files (same [`FileId`]s as in the new model), then the old one's.
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// Whether the new version is compatible with the old one.
    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// All diagnostics rendered as plain text, rustc style, separated by blank lines.
    pub fn rendered(&self) -> String {
        render_all(&self.diagnostics, &self.sources)
    }
}

/// Compares `new` against `old` and returns every change that breaks a peer built from the other
/// version.
pub fn check(old: &Model, new: &Model) -> Breaks {
    let mut sources = new.sources.clone();
    let offset = sources.files().len();
    for file in old.sources.files() {
        sources.add(file.path.clone(), file.source.clone());
    }
    let mut checker = Checker {
        old,
        new,
        offset,
        out: Vec::new(),
    };
    for old_type in &old.types {
        match new.find_type(&old_type.qualified_name) {
            Some(new_type) => checker.type_def(old_type, new_type),
            None => checker.removed(
                "type",
                &old_type.qualified_name,
                &old_type.package,
                old_type.name_span,
            ),
        }
    }
    for old_service in &old.services {
        match new.find_service(&old_service.qualified_name) {
            Some(new_service) => checker.service(old_service, new_service),
            None => checker.removed(
                "service",
                &old_service.qualified_name,
                &old_service.package,
                old_service.name_span,
            ),
        }
    }
    let mut diagnostics = checker.out;
    // Stable: breaks at the same place keep the order they were found in.
    diagnostics.sort_by_key(|d| d.span.map_or((usize::MAX, 0), |s| (s.file.0, s.start)));
    Breaks {
        diagnostics,
        sources,
    }
}

/// A struct's or variant's fields, or a method's parameters, with what names them in messages.
struct Members<'a> {
    /// `pkg.T` or `pkg.T.Variant`.
    owner: String,
    fields: &'a [Field],
    /// `None` for a variant, whose fields cannot be reserved.
    reserved: Option<&'a [String]>,
}

struct Checker<'a> {
    old: &'a Model,
    new: &'a Model,
    /// Where the old model's files start in the combined source map.
    offset: usize,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// An old span moved into the combined source map.
    fn old_span(&self, span: Span) -> Span {
        Span::new(FileId(span.file.0 + self.offset), span.start, span.end)
    }

    fn old_type(&self, ty: &TypeRef) -> String {
        type_text(self.old, ty)
    }

    fn new_type(&self, ty: &TypeRef) -> String {
        type_text(self.new, ty)
    }

    /// Reports a break at `at` in the new schema, with `old` as "in the old schema" note.
    fn report(&mut self, message: String, at: Span, label: &str, old: Span, help: &str) {
        let note = self.old_span(old);
        let mut diagnostic = Diagnostic::error(message, at)
            .with_label(label)
            .with_note("in the old schema", Some(note));
        if !help.is_empty() {
            diagnostic = diagnostic.with_help(help);
        }
        self.out.push(diagnostic);
    }

    /// A type or service of the old schema that the new one lacks. It is reported at the new
    /// schema's declaration of the same package if there is one.
    fn removed(&mut self, what: &str, name: &str, package: &str, old: Span) {
        let message = format!("{what} `{name}` was removed");
        let help = "peers built from the old schema still use it: keep it \
                    (it may be marked `@deprecated`)";
        match self.new.package(package).files().next() {
            Some(file) => {
                let label = format!("package `{package}` no longer declares it");
                self.report(message, file.package_span, &label, old, help);
            }
            None => {
                let note = self.old_span(old);
                self.out.push(
                    Diagnostic::error_without_span(format!(
                        "{message} (with its package `{package}`)"
                    ))
                    .with_note("in the old schema", Some(note))
                    .with_help(help),
                );
            }
        }
    }

    fn type_def(&mut self, old: &TypeDef, new: &TypeDef) {
        let name = &new.qualified_name;
        match (&old.kind, &new.kind) {
            (TypeKind::Struct(old_fields), TypeKind::Struct(new_fields)) => {
                self.fields(
                    Members {
                        owner: name.clone(),
                        fields: old_fields,
                        reserved: Some(&old.reserved),
                    },
                    Members {
                        owner: name.clone(),
                        fields: new_fields,
                        reserved: Some(&new.reserved),
                    },
                    new.name_span,
                );
                let used: Vec<&str> = new_fields.iter().map(|f| f.name.as_str()).collect();
                self.dropped_reservations(name, old, new, &used);
            }
            (TypeKind::Enum(old_variants), TypeKind::Enum(new_variants))
            | (TypeKind::Error(old_variants), TypeKind::Error(new_variants)) => {
                for old_variant in old_variants {
                    let owner = format!("{name}.{}", old_variant.name);
                    match new_variants.iter().find(|v| v.name == old_variant.name) {
                        Some(new_variant) => self.fields(
                            Members {
                                owner: owner.clone(),
                                fields: &old_variant.fields,
                                reserved: None,
                            },
                            Members {
                                owner,
                                fields: &new_variant.fields,
                                reserved: None,
                            },
                            new_variant.name_span,
                        ),
                        None if new.reserved.contains(&old_variant.name) => {}
                        None => self.report(
                            format!("variant `{owner}` was removed without reserving its name"),
                            new.name_span,
                            &format!(
                                "`{}` is neither a variant nor reserved here",
                                old_variant.name
                            ),
                            old_variant.name_span,
                            &format!(
                                "add `reserved \"{}\";` to `{}`, so that no later version gives \
                                 the name another meaning",
                                old_variant.name, new.name
                            ),
                        ),
                    }
                }
                for new_variant in new_variants {
                    if old.reserved.contains(&new_variant.name) {
                        self.report(
                            format!(
                                "variant `{name}.{}` reuses a name reserved in the old schema",
                                new_variant.name
                            ),
                            new_variant.name_span,
                            "reserved in the old schema",
                            old.name_span,
                            "a reserved name was once used with another meaning: choose another",
                        );
                    }
                }
                let used: Vec<&str> = new_variants.iter().map(|v| v.name.as_str()).collect();
                self.dropped_reservations(name, old, new, &used);
            }
            _ => self.report(
                format!(
                    "`{name}` changed from {} to {}",
                    kind_text(&old.kind),
                    kind_text(&new.kind)
                ),
                new.name_span,
                &format!("now {}", kind_text(&new.kind)),
                old.name_span,
                "the kinds have different wire forms or uses: declare a new type instead",
            ),
        }
    }

    /// Compares the fields of a struct or variant (maps on the wire: matched by name).
    fn fields(&mut self, old: Members<'_>, new: Members<'_>, new_owner_span: Span) {
        for old_field in old.fields {
            let path = format!("{}.{}", new.owner, old_field.name);
            match new.fields.iter().find(|f| f.name == old_field.name) {
                Some(new_field) => self.field_type(&path, "field", old_field, new_field),
                None if !old_field.is_optional() => self.report(
                    format!("required field `{path}` was removed"),
                    new_owner_span,
                    &format!("no field `{}` here", old_field.name),
                    old_field.name_span,
                    "readers built from the old schema require it: make it optional in one \
                     version, then remove it and reserve its name in a later one",
                ),
                None if new.reserved.is_some_and(|r| r.contains(&old_field.name)) => {}
                None if new.reserved.is_none() => self.report(
                    format!("optional field `{path}` was removed"),
                    new_owner_span,
                    &format!("no field `{}` here", old_field.name),
                    old_field.name_span,
                    "a variant's field names cannot be reserved, so a later version could give \
                     the name another meaning: keep it (it may be marked `@deprecated`)",
                ),
                None => self.report(
                    format!("optional field `{path}` was removed without reserving its name"),
                    new_owner_span,
                    &format!("`{}` is neither a field nor reserved here", old_field.name),
                    old_field.name_span,
                    &format!(
                        "add `reserved \"{}\";` here, so that no later version gives the name \
                         another meaning",
                        old_field.name
                    ),
                ),
            }
        }
        for new_field in new.fields {
            if old.fields.iter().any(|f| f.name == new_field.name) {
                continue;
            }
            let path = format!("{}.{}", new.owner, new_field.name);
            if old.reserved.is_some_and(|r| r.contains(&new_field.name)) {
                self.report(
                    format!("field `{path}` reuses a name reserved in the old schema"),
                    new_field.name_span,
                    "reserved in the old schema",
                    owner_span_in_old(self.old, &old.owner).unwrap_or(new_field.name_span),
                    "a reserved name was once used with another meaning: choose another",
                );
            } else if !new_field.is_optional() {
                let old_owner = owner_span_in_old(self.old, &old.owner);
                self.report(
                    format!("required field `{path}` was added"),
                    new_field.name_span,
                    "required",
                    old_owner.unwrap_or(new_field.name_span),
                    &format!(
                        "writers built from the old schema do not send it: make it optional \
                         (`{}: {}?`)",
                        new_field.name,
                        self.new_type(&new_field.ty)
                    ),
                );
            }
        }
    }

    /// Reports a field or parameter whose type changed.
    fn field_type(&mut self, path: &str, what: &str, old: &Field, new: &Field) {
        if same_type(self.old, &old.ty, self.new, &new.ty) {
            return;
        }
        let (old_text, new_text) = (self.old_type(&old.ty), self.new_type(&new.ty));
        let (message, help) = if same_type(
            self.old,
            old.ty.strip_optional(),
            self.new,
            new.ty.strip_optional(),
        ) {
            if old.is_optional() {
                (
                    format!("{what} `{path}` became required"),
                    "peers built from the old schema may leave it out",
                )
            } else {
                (
                    format!("{what} `{path}` became optional"),
                    "peers built from the old schema require it",
                )
            }
        } else {
            (
                format!("{what} `{path}` changed type from `{old_text}` to `{new_text}`"),
                "peers built from the old schema read and write the old type: add a new one \
                 instead",
            )
        };
        self.report(
            message,
            new.type_span,
            &format!("was `{old_text}`"),
            old.type_span,
            help,
        );
    }

    /// Reports reserved names of `old` that `new` no longer reserves (and does not reuse, which
    /// is reported on its own).
    fn dropped_reservations(&mut self, name: &str, old: &TypeDef, new: &TypeDef, used: &[&str]) {
        for reserved in &old.reserved {
            if !new.reserved.contains(reserved) && !used.contains(&reserved.as_str()) {
                self.report(
                    format!("`{name}` no longer reserves `{reserved}`"),
                    new.name_span,
                    "reservation dropped",
                    old.name_span,
                    &format!("reservations are permanent: keep `reserved \"{reserved}\";`"),
                );
            }
        }
    }

    fn service(&mut self, old: &Service, new: &Service) {
        let name = &new.qualified_name;
        self.methods(
            name,
            (&old.methods, &old.reserved),
            (&new.methods, &new.reserved),
            (old.name_span, new.name_span),
        );
        let client = new.client_service_name();
        self.methods(
            &client,
            (&old.client_methods, &old.client_reserved),
            (&new.client_methods, &new.client_reserved),
            (old.name_span, new.name_span),
        );
    }

    /// Compares the methods of a service or of its client side.
    fn methods(
        &mut self,
        service: &str,
        (old_methods, old_reserved): (&[Method], &[String]),
        (new_methods, new_reserved): (&[Method], &[String]),
        (old_span, new_span): (Span, Span),
    ) {
        for old_method in old_methods {
            let path = format!("{service}/{}", old_method.name);
            match new_methods.iter().find(|m| m.name == old_method.name) {
                Some(new_method) => self.method(&path, old_method, new_method),
                None if new_reserved.contains(&old_method.name) => {}
                None => self.report(
                    format!("method `{path}` was removed without reserving its name"),
                    new_span,
                    &format!(
                        "`{}` is neither a method nor reserved here",
                        old_method.name
                    ),
                    old_method.name_span,
                    &format!(
                        "add `reserved \"{}\";` to {}, so that no later version gives the name \
                         another meaning",
                        old_method.name,
                        if service.ends_with(".client") {
                            "the `client` block"
                        } else {
                            "the service"
                        }
                    ),
                ),
            }
        }
        for new_method in new_methods {
            if old_reserved.contains(&new_method.name) {
                self.report(
                    format!(
                        "method `{service}/{}` reuses a name reserved in the old schema",
                        new_method.name
                    ),
                    new_method.name_span,
                    "reserved in the old schema",
                    old_span,
                    "a reserved name was once used with another meaning: choose another",
                );
            }
        }
        for reserved in old_reserved {
            let reused = new_methods.iter().any(|m| &m.name == reserved);
            if !new_reserved.contains(reserved) && !reused {
                self.report(
                    format!("`{service}` no longer reserves `{reserved}`"),
                    new_span,
                    "reservation dropped",
                    old_span,
                    &format!("reservations are permanent: keep `reserved \"{reserved}\";`"),
                );
            }
        }
    }

    fn method(&mut self, path: &str, old: &Method, new: &Method) {
        if old.kind != new.kind {
            self.report(
                format!(
                    "method `{path}` changed from {} to {}",
                    method_kind_text(old.kind),
                    method_kind_text(new.kind)
                ),
                new.name_span,
                &format!("now {}", method_kind_text(new.kind)),
                old.name_span,
                "the kinds are called with different frames: add a new method instead",
            );
            return;
        }
        self.params(path, old, new);
        if let (Some(old_input), Some(new_input)) = (&old.input, &new.input) {
            let what = format!("stream parameter `{}` of `{path}`", new_input.name);
            if !same_type(self.old, &old_input.ty, self.new, &new_input.ty) {
                let (old_text, new_text) =
                    (self.old_type(&old_input.ty), self.new_type(&new_input.ty));
                self.report(
                    format!("{what} changed item type from `{old_text}` to `{new_text}`"),
                    new_input.type_span,
                    &format!("was `{old_text}`"),
                    old_input.type_span,
                    "callees built from the old schema decode the old type: add a new method \
                     instead",
                );
            }
        }
        let returns_same = match (&old.returns, &new.returns) {
            (None, None) => true,
            (Some(a), Some(b)) => same_type(self.old, a, self.new, b),
            _ => false,
        };
        if !returns_same {
            let text = |model: &Model, ty: &Option<TypeRef>| {
                ty.as_ref().map_or("nothing".to_owned(), |t| {
                    format!("`{}`", type_text(model, t))
                })
            };
            let what = if new.kind == MethodKind::Stream {
                "item type"
            } else {
                "result"
            };
            let (old_text, new_text) = (text(self.old, &old.returns), text(self.new, &new.returns));
            self.report(
                format!("{what} of `{path}` changed from {old_text} to {new_text}"),
                new.name_span,
                &format!("was {old_text}"),
                old.name_span,
                "callers built from the old schema decode the old type: add a new method instead",
            );
        }
        let throws_name = |model: &Model, id: Option<crate::TypeId>| {
            id.map(|id| model.type_def(id).qualified_name.clone())
        };
        let (old_throws, new_throws) = (
            throws_name(self.old, old.throws),
            throws_name(self.new, new.throws),
        );
        if old_throws != new_throws {
            let text =
                |t: &Option<String>| t.as_ref().map_or("none".to_owned(), |t| format!("`{t}`"));
            self.report(
                format!(
                    "error type of `{path}` changed from {} to {}",
                    text(&old_throws),
                    text(&new_throws)
                ),
                new.name_span,
                &format!("threw {}", text(&old_throws)),
                old.name_span,
                "callers built from the old schema decode the old error type: add a new method \
                 instead",
            );
        }
    }

    /// Compares parameters by position: a rename is compatible (names are not on the wire),
    /// unless the name moved to another position.
    fn params(&mut self, path: &str, old: &Method, new: &Method) {
        for (index, old_param) in old.params.iter().enumerate() {
            let Some(new_param) = new.params.get(index) else {
                self.report(
                    format!("parameter `{}` of `{path}` was removed", old_param.name),
                    new.name_span,
                    &format!(
                        "{} now, {} before",
                        count(new.params.len(), "parameter"),
                        old.params.len()
                    ),
                    old_param.name_span,
                    "callers built from the old schema still send it, and callees built from it \
                     may require it: keep it (it may be marked `@deprecated`)",
                );
                continue;
            };
            let param_path = format!("{path}({})", new_param.name);
            let moved_from = old
                .params
                .iter()
                .position(|p| p.name == new_param.name)
                .filter(|&from| from != index && new_param.name != old_param.name);
            if let Some(from) = moved_from {
                self.report(
                    format!(
                        "parameter `{}` of `{path}` moved from position {} to {}",
                        new_param.name,
                        from + 1,
                        index + 1
                    ),
                    new_param.name_span,
                    &format!("position {} was `{}`", index + 1, old_param.name),
                    old.params[from].name_span,
                    "parameters are positional on the wire: keep their order, add new ones at \
                     the end",
                );
            } else {
                self.field_type(&param_path, "parameter", old_param, new_param);
            }
        }
        for new_param in new.params.iter().skip(old.params.len()) {
            if !new_param.is_optional() {
                self.report(
                    format!(
                        "required parameter `{}` was added to `{path}`",
                        new_param.name
                    ),
                    new_param.name_span,
                    "required",
                    old.name_span,
                    &format!(
                        "callers built from the old schema do not send it: make it optional \
                         (`{}: {}?`)",
                        new_param.name,
                        self.new_type(&new_param.ty)
                    ),
                );
            }
        }
    }
}

/// The name span of a type in the old model, found by the owner path (`pkg.T` or
/// `pkg.T.Variant`).
fn owner_span_in_old(old: &Model, owner: &str) -> Option<Span> {
    if let Some(ty) = old.find_type(owner) {
        return Some(ty.name_span);
    }
    let (ty, variant) = owner.rsplit_once('.')?;
    old.find_type(ty)?
        .variants()?
        .iter()
        .find(|v| v.name == variant)
        .map(|v| v.name_span)
}

/// Whether two types, each in its own model, are the same: declared types by qualified name.
fn same_type(a_model: &Model, a: &TypeRef, b_model: &Model, b: &TypeRef) -> bool {
    match (a, b) {
        (TypeRef::Primitive(x), TypeRef::Primitive(y)) => x == y,
        (TypeRef::List(x), TypeRef::List(y)) | (TypeRef::Optional(x), TypeRef::Optional(y)) => {
            same_type(a_model, x, b_model, y)
        }
        (TypeRef::Map(xk, xv), TypeRef::Map(yk, yv)) => {
            same_type(a_model, xk, b_model, yk) && same_type(a_model, xv, b_model, yv)
        }
        (TypeRef::Named(x), TypeRef::Named(y)) => {
            a_model.type_def(*x).qualified_name == b_model.type_def(*y).qualified_name
        }
        _ => false,
    }
}

/// `1 parameter`, `2 parameters`.
fn count(n: usize, noun: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {noun}{plural}")
}

fn kind_text(kind: &TypeKind) -> &'static str {
    match kind {
        TypeKind::Struct(_) => "a struct",
        TypeKind::Enum(_) => "an enum",
        TypeKind::Error(_) => "an error",
    }
}

fn method_kind_text(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::Rpc => "an rpc",
        MethodKind::Stream => "a stream",
        MethodKind::Notify => "a notification",
        MethodKind::ClientStream => "a client stream",
        MethodKind::BidiStream => "a bidirectional stream",
    }
}
