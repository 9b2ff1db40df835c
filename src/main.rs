//! The `station-api` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    station_api::allocator::return_large_blocks_when_freed();
    let cli = station_api::cli::Cli::parse();
    let _flush_logs_at_exit = station_api::telemetry::init(cli.log_format());
    match station_api::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
