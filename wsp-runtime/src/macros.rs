//! Macros for users of generated code.

/// Includes the Rust module that `wsp_build::compile` generated for a schema package, from
/// `OUT_DIR` (like tonic's `include_proto!`).
///
/// The argument is the package name as written in the schema (`"math"`, `"acme.geo"`). Generated
/// files refer to other packages by relative paths (`super::common::Point`), so include each
/// package as a module named after it, nesting modules for dotted names:
///
/// ```text
/// pub mod common { wsp_runtime::include_schema!("common"); }
/// pub mod geometry { wsp_runtime::include_schema!("geometry"); }
/// ```
#[macro_export]
macro_rules! include_schema {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}
