//! wsp-runtime.
