//! wsp-build.
