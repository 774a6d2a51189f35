//! `wsp-codegen`: checks `.wsp` schema files (code generation subcommands come next).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The wsp schema compiler.
#[derive(Debug, Parser)]
#[command(name = "wsp-codegen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. A code generation subcommand is added as a new variant with its own options
/// struct (`--lang`, `-o`) that embeds [`Inputs`] with `#[command(flatten)]` and calls
/// [`Inputs::load`].
#[derive(Debug, Subcommand)]
enum Command {
    /// Validate schema files and everything they import.
    ///
    /// Prints nothing and exits 0 when they are valid; prints every error to stderr (plain text,
    /// rustc style) and exits 1 otherwise.
    Check(Inputs),
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
    let cli = Cli::parse();
    match cli.command {
        Command::Check(inputs) => match inputs.load() {
            Ok(_) => ExitCode::SUCCESS,
            Err(code) => code,
        },
    }
}
