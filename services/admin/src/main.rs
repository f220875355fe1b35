//! The `weft-admin` binary: parses the command line and runs it against the process
//! environment. A bad command line or an invalid `WEFT_*` value exits with status 2, as
//! for every service; a failed command exits with status 1.

use clap::Parser;
use std::process::ExitCode;
use weft_admin::Cli;
use weft_runtime::config::{ConfigError, Env};

#[tokio::main]
async fn main() -> ExitCode {
    weft_runtime::telemetry::init("weft-admin", "warn");
    let cli = Cli::parse();
    match weft_admin::run(cli, &Env::from_process()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-admin: {error:#}");
            if error.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
