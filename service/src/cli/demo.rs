//! `demo`: a small environment built into the binary, committed into the
//! user's repository on first use (tag `spfs-macos/demo`), then run — so
//! the first command works from a clone alone, with no repository to find.

use std::os::unix::fs::PermissionsExt;

use super::{CliResult, Endpoint};
use crate::repo::commit;
use crate::repo::tags::TagSpec;
use crate::repo::RepositorySet;

/// The tag the demo layer is committed as.
pub(super) const DEMO_TAG: &str = "spfs-macos/demo";

/// The demo's files: path, mode, content.
const FILES: [(&str, u32, &[u8]); 3] = [
    ("README.txt", 0o644, include_bytes!("demo/README.txt")),
    ("bin/hello", 0o755, include_bytes!("demo/bin/hello")),
    ("etc/demo.conf", 0o644, include_bytes!("demo/etc/demo.conf")),
];

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The command to run in the demo runtime [default: list /spfs and
    /// show its README].
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Commits the demo layer (the same digest every time) and tags it.
fn commit_demo() -> Result<(), Box<dyn std::error::Error>> {
    let repos = RepositorySet::from_environment()?;
    let repo = repos.primary();
    let dir = tempfile::tempdir()?;
    for (path, mode, content) in FILES {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::write(&p, content)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let layer = commit::commit_dir(repo, dir.path())?.layer;
    repo.push_tag(&TagSpec::parse(DEMO_TAG)?, layer, repos.author())?;
    Ok(())
}

pub(super) fn run(args: Args, endpoint: &Endpoint) -> CliResult {
    commit_demo().map_err(|e| format!("cannot make the demo environment: {e}"))?;
    let command = if args.command.is_empty() {
        let m = endpoint.mountpoint.display();
        let tries = try_lines(&endpoint.mountpoint);
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("ls -lR {m} && echo && cat {m}/README.txt && echo && printf '%s\\n' \"$1\""),
            "sh".to_owned(),
            tries,
        ]
    } else {
        args.command
    };
    super::run::run_command(DEMO_TAG, endpoint, command)
}

/// What to try next, written for this machine: the command as it can be
/// typed here (its full path when it is not on PATH, as after
/// `scripts/run`) and the mountpoint in use.
fn try_lines(mountpoint: &std::path::Path) -> String {
    let exe = std::env::current_exe().ok();
    let on_path = exe.as_ref().is_some_and(|exe| {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| {
                std::fs::canonicalize(dir.join("spfs-fuse-macos"))
                    .ok()
                    .as_ref()
                    == Some(exe)
            })
        })
    });
    let cmd = match exe {
        Some(exe) if !on_path => super::shell_word(&exe),
        _ => "spfs-fuse-macos".to_owned(),
    };
    let m = super::shell_word(mountpoint);
    let mut lines = vec![
        "Try:".to_owned(),
        format!("  {cmd} run {DEMO_TAG} -- {m}/bin/hello"),
        format!("  {cmd} run --edit {DEMO_TAG} -- sh     # change files in {m}, then:"),
        format!("  {cmd} commit -t my/first-layer             # (inside that shell)"),
        format!("  {cmd} runtime ls"),
    ];
    if !on_path {
        lines.push(format!(
            "(or put it on your PATH: sudo ln -sf {cmd} /usr/local/bin/spfs-fuse-macos)"
        ));
    }
    lines.join("\n")
}
