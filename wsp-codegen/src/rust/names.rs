//! Rust identifiers for schema names: case conversion and keyword escaping.

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};

/// Rust keywords (strict, reserved and edition-dependent) that need `r#` or a suffix.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers; they get a trailing `_` instead.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// An identifier for `name` as is, escaped when it is a keyword (`r#type`, `self_`).
pub(crate) fn escaped(name: &str) -> Ident {
    if NOT_RAW.contains(&name) {
        Ident::new(&format!("{name}_"), Span::call_site())
    } else if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// The snake_case Rust name of a field, parameter or method (before escaping).
pub(crate) fn snake(name: &str) -> String {
    let lead = name.len() - name.trim_start_matches('_').len();
    let converted = name.to_snake_case();
    format!("{}{converted}", "_".repeat(lead))
}

/// The UpperCamelCase Rust name of a type, variant or service (before escaping).
pub(crate) fn camel(name: &str) -> String {
    let converted = name.to_upper_camel_case();
    if converted.is_empty() {
        "_".to_owned()
    } else {
        converted
    }
}

/// A field, parameter or method identifier: snake_case, escaped.
pub(crate) fn field_ident(name: &str) -> Ident {
    escaped(&snake(name))
}

/// A type, variant or service identifier: UpperCamelCase, escaped.
pub(crate) fn type_ident(name: &str) -> Ident {
    escaped(&camel(name))
}

/// An identifier built from parts, e.g. `GeometryClient`.
pub(crate) fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_keywords() {
        assert_eq!(field_ident("type").to_string(), "r#type");
        assert_eq!(field_ident("self").to_string(), "self_");
        assert_eq!(field_ident("crate").to_string(), "crate_");
        assert_eq!(field_ident("Box").to_string(), "r#box");
        assert_eq!(field_ident("fooBar").to_string(), "foo_bar");
        assert_eq!(field_ident("an_i64").to_string(), "an_i64");
        assert_eq!(type_ident("Self").to_string(), "Self_");
        assert_eq!(type_ident("type").to_string(), "Type");
        assert_eq!(type_ident("GeometryError").to_string(), "GeometryError");
    }
}
