//! The wsp schema compiler.
//!
//! For now this crate is the `wsp-codegen` command-line tool, whose `check` subcommand validates
//! `.wsp` schemas with [`wsp_idl`]. The Rust and TypeScript generators will live here next, each
//! reading a [`wsp_idl::Model`].
