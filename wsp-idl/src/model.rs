//! The resolved model that code generators read.
//!
//! Everything is in declaration order: files in load order (a file's imports before the file),
//! types and services in the order they are written within a file. Every type reference is a
//! [`TypeId`] into [`Model::types`], so generators never look names up themselves.

use std::path::PathBuf;

use crate::diagnostic::{FileId, SourceMap, Span};

/// Index of a type in [`Model::types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub usize);

/// Index of a service in [`Model::services`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub usize);

/// Built-in scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `bool`
    Bool,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64` (a decimal string in JSON, a `bigint` in TypeScript)
    I64,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64` (a decimal string in JSON, a `bigint` in TypeScript)
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `string` (UTF-8)
    String,
    /// `bytes`
    Bytes,
}

impl Primitive {
    /// Every primitive, in the order the language reference lists them.
    pub const ALL: [Primitive; 13] = [
        Primitive::Bool,
        Primitive::I8,
        Primitive::I16,
        Primitive::I32,
        Primitive::I64,
        Primitive::U8,
        Primitive::U16,
        Primitive::U32,
        Primitive::U64,
        Primitive::F32,
        Primitive::F64,
        Primitive::String,
        Primitive::Bytes,
    ];

    /// The schema spelling, e.g. `"u32"`.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Bool => "bool",
            Primitive::I8 => "i8",
            Primitive::I16 => "i16",
            Primitive::I32 => "i32",
            Primitive::I64 => "i64",
            Primitive::U8 => "u8",
            Primitive::U16 => "u16",
            Primitive::U32 => "u32",
            Primitive::U64 => "u64",
            Primitive::F32 => "f32",
            Primitive::F64 => "f64",
            Primitive::String => "string",
            Primitive::Bytes => "bytes",
        }
    }

    /// The primitive spelled `name`, if any.
    pub fn from_name(name: &str) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether this is one of the integer types.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Primitive::I8
                | Primitive::I16
                | Primitive::I32
                | Primitive::I64
                | Primitive::U8
                | Primitive::U16
                | Primitive::U32
                | Primitive::U64
        )
    }

    /// Whether this is a 64-bit integer (needs `bigint` in TypeScript, a string in JSON).
    pub fn is_64_bit_integer(self) -> bool {
        matches!(self, Primitive::I64 | Primitive::U64)
    }

    /// Whether values of this type may be map keys (strings and integers).
    pub fn is_valid_map_key(self) -> bool {
        self == Primitive::String || self.is_integer()
    }
}

/// A reference to a type, as used by fields, parameters and results.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeRef {
    /// A built-in scalar.
    Primitive(Primitive),
    /// `list<T>`.
    List(Box<TypeRef>),
    /// `map<K, V>`; `K` is always a string or integer primitive.
    Map(Box<TypeRef>, Box<TypeRef>),
    /// `T?`: absent or a `T`. Never directly nested (`T??` cannot be written).
    Optional(Box<TypeRef>),
    /// A struct, enum or error declared in a schema.
    Named(TypeId),
}

impl TypeRef {
    /// Whether this is `T?`.
    pub fn is_optional(&self) -> bool {
        matches!(self, TypeRef::Optional(_))
    }

    /// The type without a top-level `?`.
    pub fn strip_optional(&self) -> &TypeRef {
        match self {
            TypeRef::Optional(inner) => inner,
            other => other,
        }
    }
}

/// `@deprecated` or `@deprecated("reason")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecated {
    /// The reason, if given.
    pub reason: Option<String>,
}

/// One loaded schema file.
#[derive(Debug, Clone)]
pub struct File {
    /// Its id in [`Model::sources`].
    pub id: FileId,
    /// The path it was read from (lexically normalised; as given for in-memory sources).
    pub path: PathBuf,
    /// The `package` it declares.
    pub package: String,
    /// The `//!` lines.
    pub docs: Vec<String>,
    /// The files it imports.
    pub imports: Vec<FileId>,
    /// The types it declares, in order.
    pub types: Vec<TypeId>,
    /// The services it declares, in order.
    pub services: Vec<ServiceId>,
    /// The package name in its `package` declaration.
    pub package_span: Span,
}

/// A struct, enum or error.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// Its own id.
    pub id: TypeId,
    /// The name as written, e.g. `Point`.
    pub name: String,
    /// The declaring file's package, e.g. `geometry`.
    pub package: String,
    /// `<package>.<name>`, e.g. `geometry.Point`; unique in the model.
    pub qualified_name: String,
    /// The declaring file.
    pub file: FileId,
    /// `///` lines, without the marker and one leading space.
    pub docs: Vec<String>,
    /// Set when marked `@deprecated`.
    pub deprecated: Option<Deprecated>,
    /// What kind of type and its members.
    pub kind: TypeKind,
    /// Names listed in `reserved`: no field or variant of this type may use them.
    pub reserved: Vec<String>,
    /// The declaration.
    pub span: Span,
    /// Its name in the declaration.
    pub name_span: Span,
}

impl TypeDef {
    /// The fields of a struct; `None` for enums and errors.
    pub fn fields(&self) -> Option<&[Field]> {
        match &self.kind {
            TypeKind::Struct(fields) => Some(fields),
            TypeKind::Enum(_) | TypeKind::Error(_) => None,
        }
    }

    /// The variants of an enum or error; `None` for structs.
    pub fn variants(&self) -> Option<&[Variant]> {
        match &self.kind {
            TypeKind::Enum(variants) | TypeKind::Error(variants) => Some(variants),
            TypeKind::Struct(_) => None,
        }
    }

    /// Whether this is an `error` type (methods may throw it).
    pub fn is_error(&self) -> bool {
        matches!(self.kind, TypeKind::Error(_))
    }
}

/// The kinds of declared types.
#[derive(Debug, Clone)]
pub enum TypeKind {
    /// `struct`: its fields in declaration order.
    Struct(Vec<Field>),
    /// `enum`: its variants in declaration order.
    Enum(Vec<Variant>),
    /// `error`: an enum that methods can name in `throws`.
    Error(Vec<Variant>),
}

/// A variant of an enum or error. On the wire it is a map with `"$type"` set to [`Variant::name`].
#[derive(Debug, Clone)]
pub struct Variant {
    /// The name as written; also its wire name.
    pub name: String,
    /// Its fields; empty for a unit variant.
    pub fields: Vec<Field>,
    /// `///` lines.
    pub docs: Vec<String>,
    /// Set when marked `@deprecated`.
    pub deprecated: Option<Deprecated>,
    /// The declaration.
    pub span: Span,
    /// Its name in the declaration.
    pub name_span: Span,
}

impl Variant {
    /// Whether the variant was written without braces (`Empty,`).
    pub fn is_unit(&self) -> bool {
        self.fields.is_empty()
    }
}

/// A struct field, variant field or method parameter.
#[derive(Debug, Clone)]
pub struct Field {
    /// The name as written; also its wire name (the map key for fields).
    pub name: String,
    /// The type; [`TypeRef::Optional`] at the top for `T?`.
    pub ty: TypeRef,
    /// `///` lines.
    pub docs: Vec<String>,
    /// Set when marked `@deprecated`.
    pub deprecated: Option<Deprecated>,
    /// True when the field's type leads back to the type that declares the field without passing
    /// through a list or map (e.g. `next: Node?` inside `Node`): a Rust generator must put it
    /// behind a `Box`. Always false for method parameters.
    pub needs_box: bool,
    /// The declaration.
    pub span: Span,
    /// Its name in the declaration.
    pub name_span: Span,
    /// Its type in the declaration.
    pub type_span: Span,
}

impl Field {
    /// Whether the field is `T?` (may be absent on the wire).
    pub fn is_optional(&self) -> bool {
        self.ty.is_optional()
    }
}

/// How a method is called (PROTOCOL.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// `rpc m(..) -> T` or `rpc m(..)`: a CALL answered by one REPLY or ERROR.
    Rpc,
    /// `rpc m(..) -> stream T`: a STREAM answered by ITEMs and an END or ERROR.
    Stream,
    /// `notify m(..)`: a NOTIFY, never answered.
    Notify,
    /// `rpc m(.., items: stream T) -> R`: an UPLOAD; the caller sends a stream of `T`
    /// ([`Method::input`]) and gets one REPLY or ERROR.
    ClientStream,
    /// `rpc m(.., items: stream T) -> stream R`: a DUPLEX; the caller sends a stream of `T` and
    /// gets ITEMs and an END or ERROR, both at once.
    BidiStream,
}

impl MethodKind {
    /// The word used in the fingerprint's canonical form: `rpc`, `stream` or `notify`, by what
    /// the callee answers (a client stream is an `rpc`, a bidirectional one a `stream`; their
    /// `stream` parameter tells them apart).
    pub fn keyword(self) -> &'static str {
        match self {
            MethodKind::Rpc | MethodKind::ClientStream => "rpc",
            MethodKind::Stream | MethodKind::BidiStream => "stream",
            MethodKind::Notify => "notify",
        }
    }

    /// Whether the callee answers with a stream of items.
    pub fn has_output_stream(self) -> bool {
        matches!(self, MethodKind::Stream | MethodKind::BidiStream)
    }
}

/// A method of a service (or of its client side).
#[derive(Debug, Clone)]
pub struct Method {
    /// The name as written; the wire name is `"<service>/<name>"`.
    pub name: String,
    /// How it is called.
    pub kind: MethodKind,
    /// Parameters in order. Optional ones (`T?`) may stand anywhere; only those after the last
    /// required one may be left out by callers (see [`Method::omittable_from`]).
    pub params: Vec<Field>,
    /// The stream the caller sends, for [`MethodKind::ClientStream`] and
    /// [`MethodKind::BidiStream`]: the parameter written `name: stream T` (always the last as
    /// written), with `T` as its type. It is not among [`Method::params`].
    pub input: Option<Field>,
    /// The result type (the item type for streams); `None` for notifications and for rpcs
    /// written without `->` (their result is nil on the wire).
    pub returns: Option<TypeRef>,
    /// The error type named by `throws`; always an [`TypeKind::Error`] type.
    pub throws: Option<TypeId>,
    /// `///` lines.
    pub docs: Vec<String>,
    /// Set when marked `@deprecated`.
    pub deprecated: Option<Deprecated>,
    /// The declaration.
    pub span: Span,
    /// Its name in the declaration.
    pub name_span: Span,
}

impl Method {
    /// The index from which on callers may leave parameters out: the start of the run of
    /// optional parameters that ends the list (`params.len()` when the last one is required).
    /// An optional parameter before a required one is always sent (as nil when absent), so that
    /// the positions of the parameters after it stay fixed; the trailing run may be cut short,
    /// which is how a parameter is added compatibly (docs/language.md).
    pub fn omittable_from(&self) -> usize {
        self.params
            .iter()
            .rposition(|p| !p.is_optional())
            .map_or(0, |last_required| last_required + 1)
    }
}

/// A service: the methods a client calls on the server, and in [`Service::client_methods`] the
/// calls the server makes on the connected client.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its own id.
    pub id: ServiceId,
    /// The name as written, e.g. `Geometry`.
    pub name: String,
    /// The declaring file's package.
    pub package: String,
    /// `<package>.<name>`: the service name on the wire (PROTOCOL.md §3).
    pub qualified_name: String,
    /// The declaring file.
    pub file: FileId,
    /// `///` lines.
    pub docs: Vec<String>,
    /// Set when marked `@deprecated`.
    pub deprecated: Option<Deprecated>,
    /// Methods served by the server, in order.
    pub methods: Vec<Method>,
    /// Methods served by the connected client (`client { }`), in order.
    pub client_methods: Vec<Method>,
    /// `///` lines of the `client { }` block.
    pub client_docs: Vec<String>,
    /// Names reserved for server methods.
    pub reserved: Vec<String>,
    /// Names reserved for client methods.
    pub client_reserved: Vec<String>,
    /// First 16 hex digits of the SHA-256 of the service's canonical form
    /// ([`crate::fingerprint::canonical_form`]); sent in HELLO.
    pub fingerprint: String,
    /// The declaration.
    pub span: Span,
    /// Its name in the declaration.
    pub name_span: Span,
}

impl Service {
    /// The wire name of the client side: `<qualified_name>.client`.
    pub fn client_service_name(&self) -> String {
        format!("{}.client", self.qualified_name)
    }

    /// The wire `method` string of a server method: `<qualified_name>/<method>`.
    pub fn method_path(&self, method: &Method) -> String {
        format!("{}/{}", self.qualified_name, method.name)
    }

    /// The wire `method` string of a client method: `<qualified_name>.client/<method>`.
    pub fn client_method_path(&self, method: &Method) -> String {
        format!("{}/{}", self.client_service_name(), method.name)
    }
}

/// Everything loaded: files, types and services, fully resolved and valid.
#[derive(Debug, Clone)]
pub struct Model {
    /// Files in load order: every file after the files it imports.
    pub files: Vec<File>,
    /// Every declared type; `types[id.0].id == id`.
    pub types: Vec<TypeDef>,
    /// Every declared service; `services[id.0].id == id`.
    pub services: Vec<Service>,
    /// The text of every file, for diagnostics a generator may want to report.
    pub sources: SourceMap,
}

impl Model {
    /// The type with this id.
    ///
    /// # Panics
    ///
    /// If the id does not come from this model.
    pub fn type_def(&self, id: TypeId) -> &TypeDef {
        &self.types[id.0]
    }

    /// The service with this id.
    ///
    /// # Panics
    ///
    /// If the id does not come from this model.
    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.0]
    }

    /// The file with this id.
    pub fn file(&self, id: FileId) -> Option<&File> {
        self.files.iter().find(|f| f.id == id)
    }

    /// The type with this qualified name (`geometry.Point`).
    pub fn find_type(&self, qualified_name: &str) -> Option<&TypeDef> {
        self.types
            .iter()
            .find(|t| t.qualified_name == qualified_name)
    }

    /// The service with this qualified name (`geometry.Geometry`).
    pub fn find_service(&self, qualified_name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.qualified_name == qualified_name)
    }

    /// One package's part of the model: its files, types and services.
    pub fn package<'a>(&'a self, name: &'a str) -> Package<'a> {
        Package { model: self, name }
    }

    /// The distinct package names, in load order.
    pub fn packages(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in &self.files {
            if !out.contains(&f.package.as_str()) {
                out.push(&f.package);
            }
        }
        out
    }

    /// The paths of every file read, imports included (for `cargo:rerun-if-changed`).
    pub fn paths(&self) -> Vec<&std::path::Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// Every type a service uses, directly or through other types, sorted by id.
    pub fn reachable_types(&self, service: ServiceId) -> Vec<TypeId> {
        let s = self.service(service);
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<TypeId> = Vec::new();
        for m in s.methods.iter().chain(&s.client_methods) {
            for p in &m.params {
                named_in(&p.ty, &mut stack);
            }
            if let Some(r) = &m.returns {
                named_in(r, &mut stack);
            }
            stack.extend(m.throws);
        }
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            stack.extend(self.referenced_types(id));
        }
        seen.into_iter().collect()
    }

    /// The types named by the fields (or variant fields) of one type, in order, with repeats.
    pub fn referenced_types(&self, id: TypeId) -> Vec<TypeId> {
        let mut out = Vec::new();
        let t = self.type_def(id);
        let fields: Vec<&Field> = match &t.kind {
            TypeKind::Struct(fields) => fields.iter().collect(),
            TypeKind::Enum(vs) | TypeKind::Error(vs) => vs.iter().flat_map(|v| &v.fields).collect(),
        };
        for f in fields {
            named_in(&f.ty, &mut out);
        }
        out
    }
}

/// One package of a [`Model`] (see [`Model::package`]), what a generator writes one file or
/// module for. Everything is in the model's order.
#[derive(Clone, Copy, Debug)]
pub struct Package<'a> {
    model: &'a Model,
    name: &'a str,
}

impl<'a> Package<'a> {
    /// The package name (`geometry`).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The files that declare this package.
    pub fn files(&self) -> impl Iterator<Item = &'a File> + 'a {
        let name = self.name;
        self.model.files.iter().filter(move |f| f.package == name)
    }

    /// The types declared in this package.
    pub fn types(&self) -> impl Iterator<Item = &'a TypeDef> + 'a {
        let name = self.name;
        self.model.types.iter().filter(move |t| t.package == name)
    }

    /// The services declared in this package.
    pub fn services(&self) -> impl Iterator<Item = &'a Service> + 'a {
        let name = self.name;
        self.model
            .services
            .iter()
            .filter(move |s| s.package == name)
    }
}

/// Appends every [`TypeRef::Named`] inside `ty`.
pub(crate) fn named_in(ty: &TypeRef, out: &mut Vec<TypeId>) {
    match ty {
        TypeRef::Primitive(_) => {}
        TypeRef::List(t) | TypeRef::Optional(t) => named_in(t, out),
        TypeRef::Map(k, v) => {
            named_in(k, out);
            named_in(v, out);
        }
        TypeRef::Named(id) => out.push(*id),
    }
}
