//! The syntax tree of one `.wsp` file, as written: names are not resolved yet.
//!
//! Every node carries the [`Span`] of the text it came from, so later stages can point at it.
//! [`crate::parse`] produces a [`SchemaFile`]; the loader resolves a set of them into a
//! [`crate::Model`].

use crate::diagnostic::Span;

/// A name as written, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A string literal (import paths, reserved names, attribute arguments), unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLit {
    /// The value with escapes (`\"`, `\\`, `\n`, `\t`) replaced.
    pub value: String,
    /// Where the literal was written, quotes included.
    pub span: Span,
}

/// One parsed schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// `//!` lines at the top of the file, without the marker and one leading space.
    pub docs: Vec<String>,
    /// The dotted package name from `package a.b;`.
    pub package: Ident,
    /// `import "path";` declarations in order.
    pub imports: Vec<StringLit>,
    /// Type and service declarations in order.
    pub items: Vec<Item>,
}

/// `@name("arg", ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name without `@`.
    pub name: Ident,
    /// The arguments; empty when written without parentheses.
    pub args: Vec<StringLit>,
    /// The whole attribute.
    pub span: Span,
}

/// What every declaration carries besides its own content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// `///` lines, without the marker and one leading space.
    pub docs: Vec<String>,
    /// Attributes in order.
    pub attributes: Vec<Attribute>,
}

/// A top-level declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Docs and attributes.
    pub meta: Meta,
    /// The declared name.
    pub name: Ident,
    /// What is declared.
    pub kind: ItemKind,
    /// The whole declaration, docs included.
    pub span: Span,
}

/// The kinds of top-level declarations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// `struct Name { ... }`.
    Struct(StructDecl),
    /// `enum Name { ... }`.
    Enum(EnumDecl),
    /// `error Name { ... }`: an enum that methods can throw.
    Error(EnumDecl),
    /// `service Name { ... }`.
    Service(ServiceDecl),
}

/// The body of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructDecl {
    /// Fields in declaration order.
    pub fields: Vec<Field>,
    /// Names listed in `reserved` declarations.
    pub reserved: Vec<StringLit>,
}

/// The body of an enum or error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumDecl {
    /// Variants in declaration order.
    pub variants: Vec<Variant>,
    /// Names listed in `reserved` declarations.
    pub reserved: Vec<StringLit>,
}

/// One variant of an enum or error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Docs and attributes.
    pub meta: Meta,
    /// The variant name.
    pub name: Ident,
    /// Fields of a variant written with braces; empty for a unit variant.
    pub fields: Vec<Field>,
    /// The whole variant.
    pub span: Span,
}

/// A struct field, variant field or method parameter: `name: type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Docs and attributes.
    pub meta: Meta,
    /// The field name.
    pub name: Ident,
    /// The declared type.
    pub ty: TypeExpr,
    /// The `stream` keyword of a parameter written `name: stream T` (the caller sends a stream
    /// of `T`); `None` everywhere else.
    pub stream: Option<Span>,
    /// The whole field.
    pub span: Span,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExpr {
    /// The shape of the type.
    pub kind: TypeExprKind,
    /// Where it was written.
    pub span: Span,
}

/// The shapes a written type can have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeExprKind {
    /// A primitive or a (possibly qualified) type name: `string`, `Point`, `common.Timestamp`.
    Path(String),
    /// `list<T>`.
    List(Box<TypeExpr>),
    /// `map<K, V>`.
    Map(Box<TypeExpr>, Box<TypeExpr>),
    /// `T?`.
    Optional(Box<TypeExpr>),
}

/// The body of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDecl {
    /// Methods the client calls on the server, in order.
    pub methods: Vec<MethodDecl>,
    /// Names reserved for server methods.
    pub reserved: Vec<StringLit>,
    /// `client { ... }` blocks (validation allows one).
    pub client_blocks: Vec<ClientBlock>,
}

/// `client { ... }`: the calls the server makes on the connected client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBlock {
    /// `///` lines before `client`.
    pub docs: Vec<String>,
    /// Methods in order.
    pub methods: Vec<MethodDecl>,
    /// Names reserved for client methods.
    pub reserved: Vec<StringLit>,
    /// The whole block.
    pub span: Span,
}

/// How a method is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKindDecl {
    /// `rpc m(..)` or `rpc m(..) -> T`.
    Rpc,
    /// `rpc m(..) -> stream T`.
    Stream,
    /// `notify m(..)`.
    Notify,
}

/// A method declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDecl {
    /// Docs and attributes.
    pub meta: Meta,
    /// How it is called.
    pub kind: MethodKindDecl,
    /// The method name.
    pub name: Ident,
    /// Parameters in order.
    pub params: Vec<Field>,
    /// The return type (the item type for streams).
    pub returns: Option<TypeExpr>,
    /// The `throws` type name.
    pub throws: Option<Ident>,
    /// The whole declaration.
    pub span: Span,
}
