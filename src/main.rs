//! `miochat`: read the flags, bind, serve until SIGINT or SIGTERM.

use std::process::ExitCode;

use miochat::config::{CliExit, Config};
use miochat::server::Server;

/// The log target of the `listening on ADDR` line.
const ADDRESS_LOG: &str = "miochat::listening";

fn main() -> ExitCode {
    // 1. Flags; `--help`, `--version` and mistakes end here.
    let config = match Config::from_args(
        std::env::args().skip(1),
        std::env::var("MIOCHAT_TOKEN").ok(),
    ) {
        Ok(config) => config,
        Err(CliExit::Print(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(CliExit::Usage(text)) => {
            eprintln!("{text}");
            return ExitCode::from(2);
        }
    };
    // 2. Logging: RUST_LOG=info unless told otherwise. The address line has a
    //    target of its own that stays at info, so tools can read the port even
    //    under RUST_LOG=warn.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .filter_module(ADDRESS_LOG, log::LevelFilter::Info)
        .init();
    // 3. Bind the listener; tests read the address from this first line.
    let mut server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server.local_addr() {
        Ok(addr) => {
            log::info!(target: ADDRESS_LOG, "listening on {addr} (open http://{addr}/ in two browser tabs)")
        }
        Err(e) => log::warn!("listening (address unknown: {e})"),
    }
    // 4. The loop.
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("poll failed: {e}");
            ExitCode::FAILURE
        }
    }
}
