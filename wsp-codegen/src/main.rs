//! `wsp-codegen`: checks `.wsp` schema files and generates code from them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod breaking;

/// The wsp schema compiler.
#[derive(Debug, Parser)]
#[command(
    name = "wsp-codegen",
    version,
    about,
    long_about = None,
    override_usage = "wsp-codegen --lang <LANG> -o <DIR> <FILE>...   (same as `generate`)\n       wsp-codegen <COMMAND>"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The command line, with `generate` implied when it starts with an option other than help or
/// version: `wsp-codegen --lang rust -o DIR FILE...` is `wsp-codegen generate --lang rust ...`.
fn args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let implied = args.get(1).and_then(|a| a.to_str()).is_some_and(|first| {
        first.starts_with('-') && !matches!(first, "-h" | "--help" | "-V" | "--version")
    });
    if implied {
        args.insert(1, "generate".into());
    }
    args
}

/// The subcommands. Each embeds [`Inputs`] with `#[command(flatten)]` and calls
/// [`Inputs::load`].
#[derive(Debug, Subcommand)]
enum Command {
    /// Validate schema files and everything they import.
    ///
    /// Prints nothing and exits 0 when they are valid; prints every error to stderr (plain text,
    /// rustc style) and exits 1 otherwise.
    Check(Inputs),
    /// Generate code for schema files and everything they import.
    ///
    /// Writes one file per schema package into the output directory (`<package>.rs` for Rust),
    /// the same files `wsp_build::compile` writes; files whose content is unchanged are not
    /// touched. On an invalid schema, prints every error to stderr and exits 1.
    Generate(GenerateArgs),
    /// Report the changes in a new version of a schema that break peers built from an old one.
    ///
    /// Compares NEW against the old version given by `--against` (files or a directory) or
    /// `--against-rev` (a git revision), by the evolution rules of docs/language.md §7. Prints
    /// every break to stderr (rustc style: where it is in NEW, the old declaration as a note) or,
    /// with `--json`, a JSON object to stdout. Exits 0 when NEW is compatible, 1 on any break, 2
    /// when a version does not load.
    Breaking(breaking::BreakingArgs),
}

/// The target languages.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LangArg {
    /// Rust, for `wsp-runtime` (include with `wsp_runtime::include_schema!`).
    Rust,
    /// TypeScript, for `@wsp/runtime`.
    Ts,
}

/// Options of `generate`.
#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// The language to generate.
    #[arg(long, value_enum)]
    lang: LangArg,
    /// The directory to write into (created if missing).
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: PathBuf,
    /// Leave out the server side (service traits and adapters, callback clients).
    #[arg(long)]
    no_server: bool,
    /// Leave out the client side (typed clients, callback traits and adapters).
    #[arg(long)]
    no_client: bool,
    /// An extra attribute for types, as `PATH=ATTRIBUTE` (e.g. `geometry.Point=#[derive(Default)]`;
    /// `PATH` may be a package or `.` for every type). Repeatable.
    #[arg(long, value_name = "PATH=ATTRIBUTE")]
    type_attribute: Vec<String>,
    /// An extra attribute for fields or variants, as `PATH=ATTRIBUTE` (e.g.
    /// `geometry.Point.x=#[doc(alias = "abscissa")]`). Repeatable.
    #[arg(long, value_name = "PATH=ATTRIBUTE")]
    field_attribute: Vec<String>,
    /// Rust: lay the code out fast (one item, statement or field per line, no wrapping) instead
    /// of formatting it with prettyplease; the code is the same. Build scripts do this.
    #[arg(long)]
    fast_layout: bool,
    /// TypeScript: the module specifier generated files import the runtime from.
    #[arg(long, value_name = "SPECIFIER", default_value = "@wsp/runtime")]
    ts_runtime: String,
    /// TypeScript: the type of `i64` and `u64`.
    #[arg(long, value_enum, default_value_t = Int64Arg::Bigint)]
    ts_int64: Int64Arg,
    #[command(flatten)]
    inputs: Inputs,
}

/// The TypeScript type of `i64` and `u64`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Int64Arg {
    /// `bigint`: exact over the whole range.
    Bigint,
    /// `number`: values beyond 2^53 fail to decode and cannot be sent, instead of being rounded.
    Number,
}

impl GenerateArgs {
    /// The options for the generator.
    fn opts(&self) -> Result<wsp_codegen::Opts, String> {
        let split = |list: &[String]| -> Result<Vec<(String, String)>, String> {
            list.iter()
                .map(|item| {
                    item.split_once('=')
                        .map(|(p, a)| (p.to_owned(), a.to_owned()))
                        .ok_or_else(|| format!("error: expected PATH=ATTRIBUTE, found `{item}`"))
                })
                .collect()
        };
        Ok(wsp_codegen::Opts {
            lang: match self.lang {
                LangArg::Rust => wsp_codegen::Lang::Rust,
                LangArg::Ts => wsp_codegen::Lang::TypeScript,
            },
            build_server: !self.no_server,
            build_client: !self.no_client,
            type_attributes: split(&self.type_attribute)?,
            field_attributes: split(&self.field_attribute)?,
            pretty: !self.fast_layout,
        })
    }

    /// Loads, generates and writes.
    fn run(&self) -> ExitCode {
        let opts = match self.opts() {
            Ok(opts) => opts,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::FAILURE;
            }
        };
        let model = match self.inputs.load() {
            Ok(model) => model,
            Err(code) => return code,
        };
        let ts = wsp_codegen::ts::TsOpts {
            runtime_module: self.ts_runtime.clone(),
            int64: match self.ts_int64 {
                Int64Arg::Bigint => wsp_codegen::ts::Int64::BigInt,
                Int64Arg::Number => wsp_codegen::ts::Int64::Number,
            },
        };
        let result = match opts.lang {
            wsp_codegen::Lang::TypeScript => wsp_codegen::ts::generate_with(&model, &opts, &ts),
            wsp_codegen::Lang::Rust => wsp_codegen::generate(&model, &opts),
        }
        .and_then(|files| wsp_codegen::write_files(&self.out_dir, &files));
        match result {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    }
}

/// The schema files a subcommand reads.
#[derive(Debug, clap::Args)]
struct Inputs {
    /// Schema files (`.wsp`); their imports are read too.
    ///
    /// All files are loaded together, so qualified type and service names must be unique across
    /// them.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

impl Inputs {
    /// Loads and validates the files, printing diagnostics on failure.
    fn load(&self) -> Result<wsp_idl::Model, ExitCode> {
        wsp_idl::load(&self.files).map_err(|err| {
            let count = err.diagnostics().len();
            eprint!("{err}");
            let plural = if count == 1 { "" } else { "s" };
            eprintln!("\nerror: could not validate the schema due to {count} error{plural}");
            ExitCode::FAILURE
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(args());
    match cli.command {
        Command::Check(inputs) => match inputs.load() {
            Ok(_) => ExitCode::SUCCESS,
            Err(code) => code,
        },
        Command::Generate(args) => args.run(),
        Command::Breaking(args) => args.run(),
    }
}
