//! Build-script support for wsp: compiles `.wsp` schemas into Rust modules in `OUT_DIR`.
//!
//! In `build.rs`:
//!
//! ```no_run
//! // build.rs: fn main() { ... }
//! wsp_build::compile_or_exit(&["schemas/geometry.wsp"]);
//! ```
//!
//! and in the crate, one module per schema package (files import each other by relative paths,
//! so nest dotted packages `a.b` as `a::b`):
//!
//! ```text
//! pub mod common { wsp_runtime::include_schema!("common"); }
//! pub mod geometry { wsp_runtime::include_schema!("geometry"); }
//! ```
//!
//! - No external compiler: the schema compiler is a Rust library.
//! - `cargo:rerun-if-changed` is printed for exactly the files read (the roots and everything
//!   they import), even when the schema is invalid, so the build reruns when any of them changes
//!   and only then.
//! - An invalid schema fails the build with rustc-style diagnostics (`--> file:line:col`, the
//!   source line, a caret), printed as text rather than a debug-escaped string.
//! - Output files are rewritten only when their content changes.

use std::path::{Path, PathBuf};

pub use wsp_codegen::{Error, Opts};

/// Compiles `schemas` (and what they import) with the default options into `OUT_DIR`.
///
/// # Errors
///
/// An invalid schema ([`Error::Schema`], whose `Display` is the rendered diagnostics), a missing
/// `OUT_DIR`, or a file that cannot be written.
///
/// # Examples
///
/// ```no_run
/// // build.rs: fn main() { ... }
/// if let Err(e) = wsp_build::compile(&["schemas/math.wsp"]) {
///     eprintln!("{e}"); // rendered diagnostics, not `{e:?}`
///     std::process::exit(1);
/// }
/// ```
pub fn compile<P: AsRef<Path>>(schemas: &[P]) -> Result<(), Error> {
    configure().compile(schemas)
}

/// Like [`compile`], but on failure prints the diagnostics readably to stderr and exits the
/// build script with status 1 (cargo then shows them as the build error).
///
/// # Examples
///
/// ```no_run
/// // build.rs: fn main() { ... }
/// wsp_build::compile_or_exit(&["schemas/math.wsp"]);
/// ```
pub fn compile_or_exit<P: AsRef<Path>>(schemas: &[P]) {
    configure().compile_or_exit(schemas)
}

/// A builder for schema compilation with options.
///
/// # Examples
///
/// ```no_run
/// // build.rs of a server that needs no client code
/// wsp_build::configure()
///     .build_client(false)
///     .type_attribute("geometry.Point", "#[derive(Default)]")
///     .compile_or_exit(&["schemas/geometry.wsp"]);
/// ```
pub fn configure() -> Builder {
    Builder::default()
}

/// Options of a schema compilation; made with [`configure`].
#[derive(Debug, Clone)]
pub struct Builder {
    opts: Opts,
    out_dir: Option<PathBuf>,
    ts_out_dir: Option<PathBuf>,
    emit_rerun_if_changed: Option<bool>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            // A build script is compiled without optimisation, where formatting with
            // prettyplease costs several times the rest of `compile()` (BENCHMARKS.md).
            opts: Opts {
                pretty: false,
                ..Opts::default()
            },
            out_dir: None,
            ts_out_dir: None,
            emit_rerun_if_changed: None,
        }
    }
}

impl Builder {
    /// Where to write the generated files (default: `OUT_DIR`).
    ///
    /// # Examples
    ///
    /// ```
    /// let tmp = std::env::temp_dir().join(format!("wsp-build-doc-out-{}", std::process::id()));
    /// std::fs::create_dir_all(&tmp).unwrap();
    /// std::fs::write(tmp.join("math.wsp"), "package math; struct P { x: f64 }").unwrap();
    /// wsp_build::configure()
    ///     .out_dir(tmp.join("generated"))
    ///     .emit_rerun_if_changed(false)
    ///     .compile(&[tmp.join("math.wsp")])
    ///     .unwrap();
    /// assert!(tmp.join("generated/math.rs").exists());
    /// ```
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Also generates TypeScript modules (`<package>.ts`, for `@wsp/runtime`) from the same
    /// schemas into `dir`, with the same server/client selection.
    ///
    /// # Examples
    ///
    /// ```
    /// let tmp = std::env::temp_dir().join(format!("wsp-build-doc-ts-{}", std::process::id()));
    /// std::fs::create_dir_all(&tmp).unwrap();
    /// std::fs::write(tmp.join("math.wsp"), "package math; service Math { rpc add(a: i64, b: i64) -> i64; }").unwrap();
    /// wsp_build::configure()
    ///     .out_dir(tmp.join("rust"))
    ///     .ts_out_dir(tmp.join("ts"))
    ///     .emit_rerun_if_changed(false)
    ///     .compile(&[tmp.join("math.wsp")])
    ///     .unwrap();
    /// assert!(tmp.join("rust/math.rs").exists());
    /// assert!(tmp.join("ts/math.ts").exists());
    /// ```
    pub fn ts_out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ts_out_dir = Some(dir.into());
        self
    }

    /// Whether to generate the server side: service traits with their `…Server` adapters, and
    /// the `…CallbacksClient` the server uses to call its clients (default: true).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// wsp_build::configure().build_server(false).compile_or_exit(&["schemas/math.wsp"]);
    /// ```
    pub fn build_server(mut self, enable: bool) -> Self {
        self.opts.build_server = enable;
        self
    }

    /// Whether to generate the client side: the `…Client` types, and the `…Callbacks` traits with
    /// their adapters for the calls the server makes on the client (default: true).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// wsp_build::configure().build_client(false).compile_or_exit(&["schemas/math.wsp"]);
    /// ```
    pub fn build_client(mut self, enable: bool) -> Self {
        self.opts.build_client = enable;
        self
    }

    /// Formats the generated Rust with `prettyplease`, with lines wrapped as rustfmt would
    /// (default: off). Off, the files get a fast layout: one item, statement, field or match
    /// arm per line, indented, no wrapping, the same code. The fast layout keeps `compile()`
    /// cheap in a build script, which is compiled without optimisation; turn this on to read
    /// the generated files more comfortably, at two to three times the cost for a large schema.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// wsp_build::configure().pretty(true).compile_or_exit(&["schemas/math.wsp"]);
    /// ```
    pub fn pretty(mut self, enable: bool) -> Self {
        self.opts.pretty = enable;
        self
    }

    /// Adds an attribute to the types selected by `path`: a qualified type name
    /// (`geometry.Point`), a package (`geometry`) or `.` for all types.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// wsp_build::configure()
    ///     .type_attribute(".", "#[non_exhaustive]")
    ///     .type_attribute("geometry.Point", "#[derive(Default)]")
    ///     .compile_or_exit(&["schemas/geometry.wsp"]);
    /// ```
    pub fn type_attribute(mut self, path: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.opts
            .type_attributes
            .push((path.into(), attribute.into()));
        self
    }

    /// Adds an attribute to the fields or variants selected by `path` (`geometry.Point.x`,
    /// `geometry.Shape.Circle`, or a prefix such as `geometry.Point`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// wsp_build::configure()
    ///     .field_attribute("geometry.Point.x", "#[doc(alias = \"abscissa\")]")
    ///     .compile_or_exit(&["schemas/geometry.wsp"]);
    /// ```
    pub fn field_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Self {
        self.opts
            .field_attributes
            .push((path.into(), attribute.into()));
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every schema file read (default: when
    /// running in a build script, i.e. when `OUT_DIR` is set).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// wsp_build::configure()
    ///     .emit_rerun_if_changed(false)
    ///     .compile_or_exit(&["schemas/math.wsp"]);
    /// ```
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = Some(enable);
        self
    }

    /// The options as set so far (shared with the `wsp-codegen` CLI).
    pub fn opts(&self) -> &Opts {
        &self.opts
    }

    /// Compiles `schemas` and what they import.
    ///
    /// # Errors
    ///
    /// An invalid schema ([`Error::Schema`]; its `Display` is the rendered diagnostics), an
    /// invalid attribute, a missing `OUT_DIR`, or a file that cannot be written.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// if let Err(e) = wsp_build::configure().compile(&["schemas/math.wsp"]) {
    ///     eprintln!("{e}");
    ///     std::process::exit(1);
    /// }
    /// ```
    pub fn compile<P: AsRef<Path>>(&self, schemas: &[P]) -> Result<(), Error> {
        let emit = self
            .emit_rerun_if_changed
            .unwrap_or_else(|| std::env::var_os("OUT_DIR").is_some());
        let model = match wsp_idl::load(schemas) {
            Ok(model) => model,
            Err(e) => {
                if emit {
                    // Watch every file read before failing, plus the roots (a missing root may
                    // appear later).
                    let mut paths: Vec<PathBuf> =
                        e.sources().files().iter().map(|f| f.path.clone()).collect();
                    paths.extend(schemas.iter().map(|p| p.as_ref().to_owned()));
                    rerun_if_changed(paths.iter().map(PathBuf::as_path));
                }
                return Err(Error::Schema(e));
            }
        };
        if emit {
            rerun_if_changed(model.paths().into_iter());
        }
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::Generate(
                        "OUT_DIR is not set: call this from a build script or set `out_dir`"
                            .to_owned(),
                    )
                })?,
        };
        let rust = Opts {
            lang: wsp_codegen::Lang::Rust,
            ..self.opts.clone()
        };
        let files = wsp_codegen::generate(&model, &rust)?;
        wsp_codegen::write_files(&out_dir, &files)?;
        if let Some(ts_dir) = &self.ts_out_dir {
            let ts = Opts {
                lang: wsp_codegen::Lang::TypeScript,
                ..self.opts.clone()
            };
            let files = wsp_codegen::generate(&model, &ts)?;
            wsp_codegen::write_files(ts_dir, &files)?;
        }
        Ok(())
    }

    /// Like [`compile`](Builder::compile), but on failure prints the error readably to stderr
    /// and exits with status 1.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// wsp_build::configure().compile_or_exit(&["schemas/math.wsp"]);
    /// ```
    pub fn compile_or_exit<P: AsRef<Path>>(&self, schemas: &[P]) {
        if let Err(e) = self.compile(schemas) {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// Prints `cargo:rerun-if-changed` once per distinct path.
fn rerun_if_changed<'a>(paths: impl Iterator<Item = &'a Path>) {
    let mut seen = std::collections::BTreeSet::new();
    for path in paths {
        if seen.insert(path.to_owned()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
