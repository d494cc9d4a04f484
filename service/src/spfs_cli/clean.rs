//! `clean`: removes the objects and payloads of the local repository that
//! no tag reaches (runtime records are tags: what live and saved runtimes
//! use stays), nothing younger than 15 minutes (what a commit or a pull
//! is writing). Safe to kill at any point (see `repo::clean`).
//!
//! Upstream's `spfs clean` is a program of its own (`spfs-clean`); this one
//! takes its flags and prints its own summary: tag history pruning first
//! (`--prune-*`, `--keep-*`, see `repo::prune`; runtime records are never
//! pruned), then what nothing reaches any more; `--remove-durable NAME`
//! removes only that saved runtime's edits.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::num::NonZeroU64;

use super::{format, CmdResult};
use crate::repo::{clean, prune};

/// An age as upstream takes it (`1y`, `8w`, `10d`, `3h`, `4m`, `8s`).
fn age(text: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    prune::age_to_time(text)
}

#[derive(Debug, clap::Args)]
pub(crate) struct CleanArgs {
    /// Remove the durable upper path component of the named runtime.
    /// If given, this will be the only thing removed.
    #[arg(long, value_name = "RUNTIME", conflicts_with_all = [
        "prune_repeated", "prune_repeated_keep", "prune_if_older_than",
        "keep_if_newer_than", "prune_if_more_than", "keep_if_less_than",
    ])]
    remove_durable: Option<String>,
    /// Don't prompt/ask before cleaning the data.
    #[arg(short, long)]
    yes: bool,
    /// Don't delete anything, just print what would be deleted (assumes
    /// --yes).
    #[arg(long)]
    dry_run: bool,
    /// Prune all tag namespaces. The default is to only prune tags in the
    /// active tag namespace.
    #[arg(long)]
    prune_all_tag_namespaces: bool,
    /// Prune old tags that have the same target as a more recent version
    #[arg(long)]
    prune_repeated: bool,
    /// When pruning old tag that have the same target as a more recent
    /// version, keep this many of the repeated tags
    #[arg(long, value_name = "PRUNE_REPEATED_KEEP")]
    prune_repeated_keep: Option<NonZeroU64>,
    /// Prune tags older that the given age (eg: 1y, 8w, 10d, 3h, 4m, 8s)
    #[arg(long, value_parser = age, value_name = "PRUNE_IF_OLDER_THAN")]
    prune_if_older_than: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Always keep data newer than the given age (eg: 1y, 8w, 10d, 3h, 4m, 8s)
    #[arg(long, value_parser = age, value_name = "KEEP_IF_NEWER_THAN")]
    keep_if_newer_than: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Prune tags if there are more than this number in a stream
    #[arg(long, value_name = "PRUNE_IF_MORE_THAN")]
    prune_if_more_than: Option<u64>,
    /// Always keep at least this number of tags in a stream
    #[arg(long, value_name = "KEEP_IF_LESS_THAN")]
    keep_if_less_than: Option<u64>,
    /// Do not remove proxies for users that have no additional hard links
    /// (this repository has no proxies: nothing to keep).
    #[arg(long)]
    keep_proxies_with_no_links: bool,
    /// Accepted for upstream's scripts: this clean reads one tag stream at
    /// a time.
    #[arg(long, env = "SPFS_CLEAN_MAX_TAG_STREAM_CONCURRENCY", value_name = "N")]
    max_tag_stream_concurrency: Option<usize>,
    /// Accepted for upstream's scripts: this clean removes one file at a
    /// time, in an order that is safe to kill.
    #[arg(long, env = "SPFS_CLEAN_MAX_REMOVAL_CONCURRENCY", value_name = "N")]
    max_removal_concurrency: Option<usize>,
    /// Accepted for upstream's scripts: this clean walks objects one at a
    /// time.
    #[arg(long, env = "SPFS_CLEAN_MAX_DISCOVER_CONCURRENCY", value_name = "N")]
    max_discover_concurrency: Option<usize>,
}

impl CleanArgs {
    fn rules(&self) -> prune::Rules {
        prune::Rules {
            repeated_keep: if self.prune_repeated {
                Some(1)
            } else {
                self.prune_repeated_keep.map(NonZeroU64::get)
            },
            older_than: self.prune_if_older_than,
            keep_newer_than: self.keep_if_newer_than,
            more_than: self.prune_if_more_than,
            keep_less_than: self.keep_if_less_than,
            all_namespaces: self.prune_all_tag_namespaces,
        }
    }
}

/// `--remove-durable NAME`: the saved runtime's edits, unless it is
/// running (its processes are writing them).
fn remove_durable(repo: &crate::repo::FsRepository, name: &str, dry_run: bool) -> CmdResult {
    if let Some(record) = repo.runtime_record(name)? {
        if let Some(pid) = crate::durable::live_owner(&record) {
            return Err(format!(
                "runtime '{name}' is running (process {pid}): its edits stay; stop it first ('spfs runtime rm -f {name}')"
            )
            .into());
        }
    }
    crate::durable::check_edits_path(repo, name).map_err(|e| e.to_string())?;
    let dir = repo.durable_dir(name);
    if !dir.exists() {
        println!(
            "no durable edits of runtime '{name}' in {}",
            repo.root().display()
        );
        return Ok(());
    }
    if dry_run {
        println!("would remove {}", dir.display());
        return Ok(());
    }
    crate::scratch::remove_all(&dir).map_err(|e| {
        format!(
            "cannot delete the edits of runtime '{name}' in {}: {e}",
            dir.display()
        )
    })?;
    println!("removed {}", dir.display());
    Ok(())
}

pub(crate) fn clean(args: CleanArgs, verbose: u8) -> CmdResult {
    let config = crate::repo::Config::load()?;
    let repo = crate::repo::FsRepository::open(&config.storage.root)?;
    if let Some(name) = &args.remove_durable {
        return remove_durable(&repo, name, args.dry_run);
    }
    let pruning = prune::plan(&repo, &args.rules())?;
    let tag_versions: usize = pruning.iter().map(|p| p.records.len()).sum();
    if verbose > 0 || args.dry_run {
        for p in &pruning {
            for (version, tag) in &p.records {
                let would = if args.dry_run { "would prune" } else { "prune" };
                println!("{would} {}~{version} {} {}", p.name, tag.target, tag.time);
            }
        }
    }
    let plan = clean::plan_after_prune(&repo, clean::GRACE, &pruning)?;
    let pruned_text = (tag_versions > 0).then(|| {
        format!(
            "{tag_versions} tag {} in {} {}",
            if tag_versions == 1 {
                "version"
            } else {
                "versions"
            },
            pruning.len(),
            if pruning.len() == 1 {
                "stream"
            } else {
                "streams"
            }
        )
    });
    let what = objects_text(&plan);
    let kept = kept_text(&plan);
    if verbose > 0 {
        for r in plan.objects.iter().chain(&plan.payloads) {
            println!("{} {}", r.digest, r.path.display());
        }
    }
    let root = repo.root().display();
    if args.dry_run {
        match &pruned_text {
            Some(t) => println!("would prune {t} and remove {what} from {root}{kept}"),
            None => println!("would remove {what} from {root}{kept}"),
        }
        return Ok(());
    }
    if plan.objects.is_empty() && plan.payloads.is_empty() && pruning.is_empty() {
        println!("nothing to remove in {root}{kept}");
        return Ok(());
    }
    if !args.yes {
        let question = match &pruned_text {
            Some(t) => format!("prune {t} and remove {what} from {root}"),
            None => format!("remove {what} from {root}"),
        };
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "clean would {question}: give -y to do it without asking, or --dry-run to list what it would remove"
            )
            .into());
        }
        let mut question = question;
        question[..1].make_ascii_uppercase();
        print!("{question}? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().take(64).read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing removed");
            return Ok(());
        }
    }
    let started = std::time::Instant::now();
    let pruned = prune::execute(&repo, &pruning)?;
    // What the pruned records reached is found again now that they are
    // gone (a tag pushed meanwhile keeps what it names).
    let plan = if pruned > 0 {
        clean::plan(&repo, clean::GRACE)?
    } else {
        plan
    };
    let plan = clean::execute(&repo, &plan, clean::GRACE)?;
    let secs = started.elapsed().as_secs_f64();
    let (what, kept) = (objects_text(&plan), kept_text(&plan));
    match pruned_text {
        Some(t) => println!("pruned {t} and removed {what} from {root} in {secs:.1} s{kept}"),
        None => println!("removed {what} from {root} in {secs:.1} s{kept}"),
    }
    Ok(())
}

/// `N objects and M payloads (SIZE)`.
fn objects_text(plan: &clean::Plan) -> String {
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} and {} ({})",
        count(plan.objects.len(), "object", "objects"),
        count(plan.payloads.len(), "payload", "payloads"),
        format::size(plan.bytes()),
    )
}

/// What the grace period keeps, when it keeps anything.
fn kept_text(plan: &clean::Plan) -> String {
    if plan.young > 0 {
        format!(
            "; {} not yet 15 minutes old kept (a commit or pull may be writing them)",
            plan.young
        )
    } else {
        String::new()
    }
}
