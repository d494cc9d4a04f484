//! `clean`: removes the objects and payloads of the local repository that
//! no tag reaches (runtime records are tags: what live and saved runtimes
//! use stays), nothing younger than 15 minutes (what a commit or a pull
//! is writing). Safe to kill at any point (see `repo::clean`).
//!
//! Upstream's `spfs clean` is a program of its own (`spfs-clean`); this one
//! takes its `--dry-run` and `-y/--yes` and prints its own summary. Tag
//! history pruning (`--prune-*`, `--keep-*`) is not taken yet.

use std::io::{BufRead, IsTerminal, Read, Write};

use super::{format, CmdResult};
use crate::repo::clean;

#[derive(Debug, clap::Args)]
pub(crate) struct CleanArgs {
    /// Don't prompt/ask before cleaning the data.
    #[arg(short, long)]
    yes: bool,
    /// Don't delete anything, just print what would be deleted (assumes
    /// --yes).
    #[arg(long)]
    dry_run: bool,
}

pub(crate) fn clean(args: CleanArgs, verbose: u8) -> CmdResult {
    let config = crate::repo::Config::load()?;
    let repo = crate::repo::FsRepository::open(&config.storage.root)?;
    let plan = clean::plan(&repo, clean::GRACE)?;
    let what = format!(
        "{} {} and {} {} ({})",
        plan.objects.len(),
        if plan.objects.len() == 1 {
            "object"
        } else {
            "objects"
        },
        plan.payloads.len(),
        if plan.payloads.len() == 1 {
            "payload"
        } else {
            "payloads"
        },
        format::size(plan.bytes()),
    );
    let kept = if plan.young > 0 {
        format!(
            "; {} not yet 15 minutes old kept (a commit or pull may be writing them)",
            plan.young
        )
    } else {
        String::new()
    };
    if verbose > 0 {
        for r in plan.objects.iter().chain(&plan.payloads) {
            println!("{} {}", r.digest, r.path.display());
        }
    }
    if args.dry_run {
        println!("would remove {what} from {}{kept}", repo.root().display());
        return Ok(());
    }
    if plan.objects.is_empty() && plan.payloads.is_empty() {
        println!("nothing to remove in {}{kept}", repo.root().display());
        return Ok(());
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "clean would remove {what} from {}: give -y to remove them without asking, or --dry-run to list them",
                repo.root().display()
            )
            .into());
        }
        print!("Remove {what} from {}? [y/N] ", repo.root().display());
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().take(64).read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing removed");
            return Ok(());
        }
    }
    let started = std::time::Instant::now();
    clean::execute(&plan)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "removed {what} from {} in {secs:.1} s{kept}",
        repo.root().display()
    );
    Ok(())
}
