//! A new user's first day with wsp.
//!
//! - `tests/new_user.rs` copies `template/` (a crate with two schemas, one importing the other,
//!   a `build.rs` and a `main.rs` as README.md describes them) to a directory outside the
//!   workspace, builds and runs it with `cargo run --offline`, and checks what it prints.
//! - The code blocks of `docs/rust.md` are this crate's doctests (`cargo test -p
//!   wsp-new-user-tests --doc`): `OUT_DIR` holds the generated `common`, `geometry` and
//!   `kitchen.sink` modules they include.

/// The generated modules, so that `Point: PartialOrd` (the `type_attribute` of `build.rs`) is
/// checked here too.
pub mod common {
    wsp_runtime::include_schema!("common");
}
/// The `geometry` package (it imports `common`).
pub mod geometry {
    wsp_runtime::include_schema!("geometry");
}

/// `geometry.Point` derives `PartialOrd` through `type_attribute` (docs/rust.md, Setup).
pub fn left_of(a: &geometry::Point, b: &geometry::Point) -> bool {
    a < b
}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/rust.md")]
pub struct RustMd;
