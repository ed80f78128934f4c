//! The `prewarm` binary: thin subcommands over the library crates.

mod gen_cmd;
mod load_cmd;
mod load_daemon;
mod load_recovery;
mod replay_cmd;
mod serve_cmd;
mod sim_cmd;

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
    /// Run the daemon: read-through proxy, admin API, warming driver.
    Serve(serve_cmd::ServeArgs),
    /// Run the simulated market-data API (for demos and tests).
    UpstreamSim(sim_cmd::SimArgs),
    /// Replay a trace against a running proxy and print the hit rate seen.
    Load(load_cmd::LoadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => replay_cmd::run(args),
        Command::GenTrace(args) => gen_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::UpstreamSim(args) => sim_cmd::run(args),
        Command::Load(args) => load_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prewarm: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
