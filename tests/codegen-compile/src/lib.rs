//! Every schema in `schemas/`, compiled by `build.rs` with `wsp-build` and included here: the
//! generated code must compile without warnings under the workspace lints and
//! `clippy --all-targets -D warnings`, and its docs must not produce failing doctests.
//! The end-to-end tests in `tests/` run peers built from these modules over real sockets.

/// `schemas/chat.wsp`.
pub mod chat {
    wsp_runtime::include_schema!("chat");
}

/// `schemas/common.wsp`.
pub mod common {
    wsp_runtime::include_schema!("common");
}

/// `schemas/geometry.wsp`.
pub mod geometry {
    wsp_runtime::include_schema!("geometry");
}

/// `schemas/keywords.wsp`: names that are Rust and TypeScript keywords.
pub mod keywords {
    wsp_runtime::include_schema!("keywords");
}

/// `schemas/kitchen_sink.wsp` (package `kitchen.sink`).
pub mod kitchen {
    /// The package `kitchen.sink`.
    pub mod sink {
        wsp_runtime::include_schema!("kitchen.sink");
    }
}

/// `tests/codegen-compile/schemas/deprecation.wsp`: a struct with a deprecated field.
pub mod deprecation {
    wsp_runtime::include_schema!("deprecation");
}

/// `schemas/math.wsp`.
pub mod math {
    wsp_runtime::include_schema!("math");
}

/// `schemas/evolution/v1.wsp`.
pub mod v1 {
    /// The package `evolution`, version 1.
    pub mod evolution {
        include!(concat!(env!("OUT_DIR"), "/v1/evolution.rs"));
    }
}

/// `schemas/evolution/v2.wsp`.
pub mod v2 {
    /// The package `evolution`, version 2.
    pub mod evolution {
        include!(concat!(env!("OUT_DIR"), "/v2/evolution.rs"));
    }
}

/// `schemas/geometry.wsp` and `schemas/kitchen_sink.wsp` generated with `build_client(false)`.
pub mod server_only {
    /// The package `common`.
    pub mod common {
        include!(concat!(env!("OUT_DIR"), "/server_only/common.rs"));
    }
    /// The package `geometry`.
    pub mod geometry {
        include!(concat!(env!("OUT_DIR"), "/server_only/geometry.rs"));
    }
    /// The package `kitchen`.
    pub mod kitchen {
        /// The package `kitchen.sink`.
        pub mod sink {
            include!(concat!(env!("OUT_DIR"), "/server_only/kitchen.sink.rs"));
        }
    }
}

/// `schemas/geometry.wsp` and `schemas/kitchen_sink.wsp` generated with `build_server(false)`.
pub mod client_only {
    /// The package `common`.
    pub mod common {
        include!(concat!(env!("OUT_DIR"), "/client_only/common.rs"));
    }
    /// The package `geometry`.
    pub mod geometry {
        include!(concat!(env!("OUT_DIR"), "/client_only/geometry.rs"));
    }
    /// The package `kitchen`.
    pub mod kitchen {
        /// The package `kitchen.sink`.
        pub mod sink {
            include!(concat!(env!("OUT_DIR"), "/client_only/kitchen.sink.rs"));
        }
    }
}
