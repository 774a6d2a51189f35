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
    if is_plain_snake(name) {
        // Most schema names already are snake_case; heck would return them unchanged, at a
        // cost a build script (compiled without optimisation) notices.
        return name.to_owned();
    }
    let lead = name.len() - name.trim_start_matches('_').len();
    let converted = name.to_snake_case();
    format!("{}{converted}", "_".repeat(lead))
}

/// The UpperCamelCase Rust name of a type, variant or service (before escaping).
pub(crate) fn camel(name: &str) -> String {
    if is_plain_camel(name) {
        return name.to_owned();
    }
    let converted = name.to_upper_camel_case();
    if converted.is_empty() {
        "_".to_owned()
    } else {
        converted
    }
}

/// Whether `to_snake_case` leaves `name` as it is: lowercase ASCII words of letters and
/// digits, each joined by one `_`, starting with a letter.
fn is_plain_snake(name: &str) -> bool {
    let b = name.as_bytes();
    b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last() != Some(&b'_')
        && !name.contains("__")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// Whether `to_upper_camel_case` leaves `name` as it is: ASCII letters and digits, starting
/// with an uppercase letter, where an uppercase letter never follows another or a digit.
fn is_plain_camel(name: &str) -> bool {
    let b = name.as_bytes();
    b.first().is_some_and(u8::is_ascii_uppercase)
        && b.iter().all(u8::is_ascii_alphanumeric)
        && b.windows(2).all(|w| {
            !(w[1].is_ascii_uppercase() && (w[0].is_ascii_uppercase() || w[0].is_ascii_digit()))
        })
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
    fn the_fast_paths_agree_with_heck() {
        let names = [
            "get0",
            "put_item",
            "a_b_c",
            "v2beta",
            "x1_y2",
            "a__b",
            "trailing_",
            "_lead",
            "fooBar",
            "getHTTP",
            "Item",
            "CostError",
            "Shape3D",
            "HTTPServer",
            "Point2d",
            "ABC",
            "A",
            "a",
            "Item_2",
            "item2Thing",
            "X9",
            "Ab9c",
            "id",
            "sent_at",
            "sentAt",
        ];
        for name in names {
            let want_snake = format!(
                "{}{}",
                "_".repeat(name.len() - name.trim_start_matches('_').len()),
                name.to_snake_case()
            );
            assert_eq!(snake(name), want_snake, "snake({name})");
            let want_camel = match name.to_upper_camel_case() {
                c if c.is_empty() => "_".to_owned(),
                c => c,
            };
            assert_eq!(camel(name), want_camel, "camel({name})");
        }
    }

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
