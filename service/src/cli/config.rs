//! `config get [KEY]`, `config set KEY VALUE`, `config path`: the user's
//! settings (`spfs_shared::settings`). A change is checked first (nothing
//! is written if it is wrong), then made by the running service — which
//! applies it at once and tells its subscribers — or, with no service
//! running, written to the file directly.

use spfs_shared::paths;
use spfs_shared::protocol::{IdleTimeoutSource, Request, Response};
use spfs_shared::settings::{human_duration, Settings, KEYS};

use super::{CliResult, Endpoint};
use crate::client::ClientError;

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Print the settings, or one of them.
    Get {
        /// idle_timeout_minutes, error_reporting or sentry_dsn.
        key: Option<String>,
    },
    /// Change a setting (the running service applies it at once).
    Set {
        /// idle_timeout_minutes, error_reporting or sentry_dsn.
        key: String,
        /// The new value (an empty one removes sentry_dsn).
        value: String,
    },
    /// Print where the settings file is.
    Path,
}

pub(super) fn run(cmd: Command, endpoint: &Endpoint) -> CliResult {
    let path = paths::settings_path();
    match cmd {
        Command::Path => println!("{}", path.display()),
        Command::Get { key: Some(key) } => println!("{}", Settings::load(&path)?.get(&key)?),
        Command::Get { key: None } => {
            let s = Settings::load(&path)?;
            for key in KEYS {
                println!("{key} = {}", s.get(key)?);
            }
            // What the running service has in effect, if it differs.
            if let Ok(mut c) = endpoint.connect() {
                if let Ok(Response::Settings(info)) = c.call(Request::GetSettings) {
                    let timeout = info.idle_timeout_secs.map_or("never".to_owned(), |s| {
                        human_duration(std::time::Duration::from_secs(s))
                    });
                    match info.idle_timeout_source {
                        IdleTimeoutSource::Setting => {}
                        IdleTimeoutSource::Environment => println!(
                            "(the running service's idle timeout is {timeout}, from SPFS_FUSE_IDLE_TIMEOUT)"
                        ),
                        IdleTimeoutSource::AlwaysOn => println!(
                            "(the running service is always on: it never stops when idle)"
                        ),
                    }
                }
            }
        }
        Command::Set { key, value } => {
            // Checked before anything is asked or written.
            let next = Settings::load(&path)?.with(&key, &value)?;
            match endpoint.connect() {
                Ok(mut c) => match c.call(Request::SetSetting {
                    key: key.clone(),
                    value: value.clone(),
                }) {
                    Ok(_) => {}
                    // Stopping: write it ourselves, the next service reads it.
                    Err(ClientError::ShuttingDown(_)) => next.save(&path)?,
                    Err(e) => return Err(e.into()),
                },
                Err(ClientError::NotRunning { .. }) => next.save(&path)?,
                Err(e) => return Err(e.into()),
            }
            println!("{key} = {}", next.get(&key)?);
        }
    }
    Ok(())
}
