//! `service`: run the service in the foreground.

use super::{CliResult, Endpoint};
use crate::service::{self, ServiceOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// FUSE request threads (Linux only; macOS serves with one).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

pub fn run(args: Args, endpoint: &Endpoint) -> CliResult {
    service::run(ServiceOptions {
        mountpoint: endpoint.mountpoint.clone(),
        socket: endpoint.socket.clone(),
        threads: args.threads,
    })?;
    Ok(())
}
