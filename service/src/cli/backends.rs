//! `backends`: the filesystem backends installed here, what each can do,
//! and the one `service --backend auto` would use.

use super::CliResult;
use crate::backend::{self, Choice, Kind};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: Args) -> CliResult {
    let installed = backend::detect(&backend::system_root(), backend::Os::current());
    let chosen = backend::choose(Choice::Auto, &installed, false);
    let found = installed.found();
    if args.json {
        let rows: Vec<serde_json::Value> = Kind::ALL
            .iter()
            .filter(|k| k.os() == installed.os)
            .map(|k| {
                let caps = k.capabilities();
                let version = found.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
                serde_json::json!({
                    "name": k.name(),
                    "title": k.title(),
                    "installed": version.is_some(),
                    "version": version.flatten(),
                    "caller_pid": caps.caller_pid,
                    "entry_timeouts": caps.entry_timeouts,
                    "served_by_fuser": caps.served_by_fuser,
                })
            })
            .collect();
        let v = serde_json::json!({
            "os_version": installed.os_version,
            "backends": rows,
            "auto": chosen.as_ref().ok().map(|b| b.kind.name()),
            "auto_error": chosen.as_ref().err().map(ToString::to_string),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for k in Kind::ALL.iter().filter(|k| k.os() == installed.os) {
        let caps = k.capabilities();
        let state = match found.iter().find(|(f, _)| f == k) {
            // A version alone ("1.2"), or a note in parentheses.
            Some((_, Some(v))) if v.starts_with('(') => format!("installed {v}"),
            Some((_, Some(v))) => format!("installed, {v}"),
            Some((_, None)) => "installed".to_owned(),
            None => "not installed".to_owned(),
        };
        let mode = if caps.caller_pid {
            "a runtime per process tree"
        } else {
            "one runtime at a time"
        };
        let served = if caps.served_by_fuser {
            ""
        } else {
            "; not supported yet"
        };
        println!("{:<14} {} — {state}; {mode}{served}", k.name(), k.title());
    }
    match chosen {
        Ok(b) => println!("auto: {} ({})", b.kind.name(), b.describe()),
        Err(e) => println!("auto: none: {e}"),
    }
    Ok(())
}
