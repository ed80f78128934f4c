//! The `prewarm` binary: thin subcommands over the library crates.

mod gen_cmd;
mod replay_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// prewarm: a smart cache-warming read-through cache for rate-limited keyed
/// data APIs.
#[derive(Debug, Parser)]
#[command(name = "prewarm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a trace: hit rate, API cost and the distance to the
    /// clairvoyant bound, with and without warming.
    Replay(replay_cmd::ReplayArgs),
    /// Generate a synthetic market-data workload (trace and universe).
    GenTrace(gen_cmd::GenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => replay_cmd::run(args),
        Command::GenTrace(args) => gen_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prewarm: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
