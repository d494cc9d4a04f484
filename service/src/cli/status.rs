//! `status` and `shutdown`.

use spfs_shared::protocol::{Request, Response};

use super::{CliResult, Endpoint};
use crate::client::ClientError;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn status(args: StatusArgs, endpoint: &Endpoint) -> CliResult {
    let mut client = endpoint.connect()?;
    let Response::Status(s) = client.call(Request::Status)? else {
        return Err("unexpected reply from the service".into());
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "service running: pid {}, version {} (protocol {}), mounted at {}, {} runtime(s), up {} s",
            s.pid, s.version, s.protocol, s.mountpoint, s.runtimes, s.uptime_secs
        );
    }
    Ok(())
}

pub fn shutdown(endpoint: &Endpoint) -> CliResult {
    let mut client = match endpoint.connect() {
        Ok(c) => c,
        Err(ClientError::NotRunning { .. }) => {
            println!("the service is not running");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    client.call(Request::Shutdown)?;
    // The service closes the socket once it has unmounted.
    while std::os::unix::net::UnixStream::connect(&endpoint.socket).is_ok() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    println!("the service stopped");
    Ok(())
}
