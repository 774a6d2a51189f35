//! Parses and validates arbitrary input as a schema; must never panic or overflow the stack.
//!
//! Run with `cargo +nightly fuzz run parse_validate` from `fuzz/`. Seed the corpus with the
//! schemas: `mkdir -p corpus/parse_validate && cp ../schemas/*.wsp corpus/parse_validate/`.
//! The stable companion is `wsp-idl/tests/robustness.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A valid file the input may import, so import resolution and qualified names get exercised.
const COMMON: &str =
    "package common;\nstruct Timestamp { millis: u64 }\nerror CommonError { NotFound }\n";

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let _ = wsp_idl::parse("fuzz.wsp", source);
    let mut loader = wsp_idl::Loader::new();
    loader
        .add_source("common.wsp", COMMON)
        .add_source("fuzz.wsp", source);
    match loader.load(&["fuzz.wsp"]) {
        Ok(model) => {
            for service in &model.services {
                let _ = wsp_idl::fingerprint::canonical_form(&model, service.id);
            }
        }
        Err(err) => {
            let _ = err.rendered();
        }
    }
});
