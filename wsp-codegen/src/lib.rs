//! wsp-codegen.
