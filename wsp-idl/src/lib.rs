//! The wsp schema language: parsing, import loading, validation and the resolved [`Model`] that
//! code generators read.
//!
//! ```
//! let mut loader = wsp_idl::Loader::new();
//! loader.add_source(
//!     "math.wsp",
//!     "package math;\nservice Math { rpc add(values: list<i64>) -> i64; }\n",
//! );
//! let model = loader.load(&["math.wsp"]).expect("valid schema");
//! let math = model.find_service("math.Math").unwrap();
//! assert_eq!(math.method_path(&math.methods[0]), "math.Math/add");
//! assert_eq!(math.fingerprint.len(), 16);
//! ```
//!
//! The pipeline is `text → ast (parse) → loader (imports) → resolve + validate → Model`. Every
//! problem is reported as a [`Diagnostic`] that renders like rustc (`file:line:col`, the source
//! line, carets). See `docs/language.md` for the language itself.

pub mod ast;
pub mod breaking;
pub mod diagnostic;
pub mod fingerprint;
mod loader;
pub mod model;
mod parse;
mod resolve;
mod symbols;
mod validate;

use std::path::Path;

pub use diagnostic::{Diagnostic, FileId, SourceMap, Span};
pub use loader::{Error, Loader, load};
pub use model::{
    Deprecated, Field, File, Method, MethodKind, Model, Package, Primitive, Service, ServiceId,
    TypeDef, TypeId, TypeKind, TypeRef, Variant,
};
pub use parse::MAX_NESTING;

/// Parses one schema's text without reading any file or resolving anything. `path` is only used
/// in messages; spans carry `FileId(0)`.
///
/// # Errors
///
/// The parse error (or the nesting-depth error), rendered against `path` and `source`.
///
/// # Examples
///
/// ```
/// let file = wsp_idl::parse("a.wsp", "package a; struct P { x: f64 }").unwrap();
/// assert_eq!(file.package.name, "a");
/// let err = wsp_idl::parse("a.wsp", "package a; struct P { x: }").unwrap_err();
/// assert!(err.to_string().starts_with("error: expected a type, found `}`"));
/// ```
pub fn parse(path: impl AsRef<Path>, source: &str) -> Result<ast::SchemaFile, Error> {
    let mut sources = SourceMap::new();
    let id = sources.add(path.as_ref(), source);
    parse::parse_file(id, source).map_err(|d| Error::new(vec![*d], sources))
}
