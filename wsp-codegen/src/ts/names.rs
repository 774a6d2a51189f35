//! TypeScript names: escaping schema names that are keywords or that would shadow what generated
//! code refers to, and the names of generated helpers.

use heck::ToUpperCamelCase;

/// Reserved words of JavaScript (strict mode and modules included), plus `arguments`, `eval`
/// and `undefined`: not usable as binding names (parameters).
const RESERVED: &[&str] = &[
    "arguments",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "undefined",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// TypeScript's predefined type names and type-level keywords: not usable as type names.
const TYPE_RESERVED: &[&str] = &[
    "any", "asserts", "bigint", "boolean", "infer", "is", "keyof", "never", "number", "object",
    "readonly", "string", "symbol", "type", "unique", "unknown",
];

/// Globals the generated code names; a schema type with one of these names would shadow them.
const GLOBALS: &[&str] = &[
    "Array",
    "AsyncIterable",
    "BigInt",
    "Boolean",
    "Error",
    "Iterable",
    "Map",
    "Number",
    "Object",
    "Promise",
    "ReadonlyMap",
    "String",
    "Symbol",
    "Uint8Array",
];

/// A schema type name in TypeScript: reserved words, TypeScript's type keywords and the globals
/// above get a trailing `_` (`type` → `type_`, `Map` → `Map_`).
pub(crate) fn ident(name: &str) -> String {
    if RESERVED.contains(&name) || TYPE_RESERVED.contains(&name) || GLOBALS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// A parameter name: reserved words get a trailing `_` (`new` → `new_`), and so do the names
/// generated methods add (`options`, `ctx`, `filter`).
pub(crate) fn param(name: &str) -> String {
    if RESERVED.contains(&name) || matches!(name, "options" | "ctx" | "filter") {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// A class member name: any identifier name works except `constructor`.
pub(crate) fn member(name: &str) -> String {
    if name == "constructor" {
        "constructor_".to_owned()
    } else {
        name.to_owned()
    }
}

/// A method name in an interface: `new(...)` would declare a construct signature, so it is
/// quoted; everything else is written as is.
pub(crate) fn interface_member(name: &str) -> String {
    if name == "new" {
        "'new'".to_owned()
    } else {
        name.to_owned()
    }
}

/// A property key in a type or object literal: schema names are always identifier names, so no
/// quoting is needed; `__proto__` would set the prototype in an object literal, so it is quoted
/// as a computed key there.
pub(crate) fn key(name: &str) -> String {
    if name == "__proto__" {
        "[\"__proto__\"]".to_owned()
    } else {
        name.to_owned()
    }
}

/// `decode` + the type name in UpperCamelCase (`decodePoint`).
pub(crate) fn helper(prefix: &str, name: &str) -> String {
    format!("{prefix}{}", upper(name))
}

/// The name in UpperCamelCase, keeping a leading capital as is (`fn` → `Fn`, `HTTPServer` stays).
pub(crate) fn upper(name: &str) -> String {
    if name.starts_with(|c: char| c.is_ascii_uppercase()) && !name.contains('_') {
        name.to_owned()
    } else {
        name.to_upper_camel_case()
    }
}

/// The module alias of a package in an import: `$` + the package with dots as `_`
/// (`kitchen.sink` → `$kitchen_sink`). Schema names cannot start with `$`, so it never collides.
pub(crate) fn package_alias(package: &str) -> String {
    format!("${}", package.replace('.', "_"))
}

/// A string literal in single quotes (schema names and fingerprints need no escapes, but wire
/// names are quoted the same way everywhere).
pub(crate) fn lit(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}
