//! wsp-idl.
