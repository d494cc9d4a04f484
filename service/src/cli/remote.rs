//! `pull` and `push`: copy refs between the local repository and the
//! remotes of the spfs config, with progress (a bar on a terminal, plain
//! lines otherwise, one JSON document with `--json`). Also what `run`
//! does first: bring a stack that is only on a remote into the local
//! repository (objects now, payloads when first opened).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spfs_remote::progress::Snapshot;
use spfs_remote::{LocalStore, Progress, Store, SyncOptions};

use super::{human_bytes, CliResult};
use crate::repo::{Config, EnvSpec, RepositorySet};

#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// What to pull: tags or full digests (several, or joined by '+').
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
    /// Pull from this remote only [default: the first configured remote
    /// that has each ref].
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// Tags and objects only: payloads are fetched when a runtime first
    /// opens their files.
    #[arg(long)]
    no_payloads: bool,
    /// Print one JSON document on stdout (no progress).
    #[arg(long)]
    json: bool,
    #[arg(skip)]
    transfer: Transfer,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// What to push: tags or full digests of the local repository.
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
    /// The remote to push to.
    #[arg(short, long, value_name = "NAME", default_value = "origin")]
    remote: String,
    /// Print one JSON document on stdout (no progress).
    #[arg(long)]
    json: bool,
}

impl PullArgs {
    /// A pull of `refs` (from `remote`, else the first that has each),
    /// payloads too, with progress.
    pub(crate) fn of(refs: Vec<String>, remote: Option<String>, transfer: Transfer) -> PullArgs {
        PullArgs {
            refs,
            remote,
            no_payloads: false,
            json: false,
            transfer,
        }
    }
}

impl PushArgs {
    /// A push of `refs` to `remote`, with progress.
    pub(crate) fn of(refs: Vec<String>, remote: String) -> PushArgs {
        PushArgs {
            refs,
            remote,
            json: false,
        }
    }
}

/// How a pull moves data: upstream's sync flags (`--check`, `--resync`,
/// `--max-concurrent-payloads`, `--progress`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Transfer {
    /// Pull from this configured remote only (`run -r NAME`); `None`:
    /// from the first remote that has each item.
    pub remote: Option<String>,
    /// Walk what is here already too, copying whatever is missing below it.
    pub check: bool,
    /// Copy everything again, replacing what is here (damaged or not).
    pub resync: bool,
    /// Payloads copied at once (`None`: `SPFS_REMOTE_DOWNLOADS`, else 8).
    pub payloads_at_once: Option<usize>,
    /// Progress shown (`None`: a bar on a terminal, lines otherwise).
    pub progress: Option<bool>,
}

impl Transfer {
    fn options(&self, payloads: bool) -> SyncOptions {
        SyncOptions {
            payloads,
            concurrency: self.payloads_at_once.unwrap_or_else(concurrency),
            check: self.check,
            resync: self.resync,
        }
    }

    /// Whether a pull of what is here already still walks it.
    fn walks_what_is_here(&self) -> bool {
        self.check || self.resync
    }
}

/// Downloads (or uploads) at once.
fn concurrency() -> usize {
    std::env::var("SPFS_REMOTE_DOWNLOADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

/// Staged files untouched this long, and unlocked, were left by a killed
/// writer (a live one writes continuously, and a download that pauses
/// longer than the remote timeout fails).
const STALE_WORK: Duration = Duration::from_secs(120);

/// The primary repository, to pull into; what an earlier pull killed in
/// the middle left staged there is cleared first.
fn local_store(config: &Config) -> crate::repo::Result<LocalStore> {
    let repo = RepositorySet::from_config(config)?.primary().clone();
    match repo.remove_stale_work(STALE_WORK) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed files a killed writer left staged"),
        Err(e) => tracing::warn!(error = %e, "cannot clear staged files"),
    }
    Ok(LocalStore::local(repo))
}

fn grpc_and_fs_remotes(config: &Config) -> spfs_remote::Result<Vec<Arc<dyn Store>>> {
    spfs_remote::configured(config)
        .iter()
        .map(spfs_remote::open)
        .collect()
}

pub(crate) fn pull(args: PullArgs) -> CliResult {
    let config = Config::load()?;
    let local = local_store(&config)?;
    let remotes = match &args.remote {
        Some(name) => vec![spfs_remote::open_named(&config, name)?],
        None => grpc_and_fs_remotes(&config)?,
    };
    if remotes.is_empty() {
        return Err("no remote to pull from: add [remote.origin] address = \"grpc://HOST:PORT\" to your spfs.toml, or set SPFS_REMOTE_origin_ADDRESS".into());
    }
    let options = args.transfer.options(!args.no_payloads);
    let progress = Arc::new(Progress::new());
    let quiet = args.json || args.transfer.progress == Some(false);
    let shown = Shown::start(progress.clone(), "pull", quiet);
    let mut synced = Vec::new();
    for r in &args.refs {
        for (s, from) in spfs_remote::pull_from_first(&remotes, &local, r, options, &progress)? {
            shown.line(&format!("pulled {} from {from}", describe(&s)));
            synced.push((s, from));
        }
    }
    let end = shown.finish();
    report("pulled", &synced, &end, args.json);
    Ok(())
}

pub(crate) fn push(args: PushArgs) -> CliResult {
    let config = Config::load()?;
    let local = local_store(&config)?;
    let remote = spfs_remote::open_named(&config, &args.remote)?;
    let progress = Arc::new(Progress::new());
    let shown = Shown::start(progress.clone(), "push", args.json);
    let options = SyncOptions {
        payloads: true,
        concurrency: concurrency(),
        ..SyncOptions::default()
    };
    let syncer = spfs_remote::Syncer::new(&local, remote.as_ref(), options, &progress);
    let mut synced = Vec::new();
    for r in &args.refs {
        for s in syncer.sync_spec(r)?.synced {
            shown.line(&format!("pushed {} to {}", describe(&s), remote.describe()));
            synced.push((s, remote.describe().to_owned()));
        }
    }
    let end = shown.finish();
    report("pushed", &synced, &end, args.json);
    Ok(())
}

fn describe(s: &spfs_remote::Synced) -> String {
    match &s.tag {
        Some(tag) => format!("{tag} ({})", s.digest),
        None => s.digest.to_string(),
    }
}

fn report(verb: &str, synced: &[(spfs_remote::Synced, String)], end: &Snapshot, json: bool) {
    if json {
        let refs: Vec<serde_json::Value> = synced
            .iter()
            .map(|(s, remote)| {
                serde_json::json!({
                    "ref": s.reference,
                    "digest": s.digest.to_string(),
                    "tag": s.tag,
                    "remote": remote,
                })
            })
            .collect();
        let doc = serde_json::json!({
            verb: refs,
            "objects": end.objects,
            "payloads": end.payloads_done,
            "bytes": end.bytes_done,
            "seconds": end.elapsed,
        });
        println!("{doc}");
    } else {
        eprintln!("{verb} {}", totals(end));
    }
}

fn totals(s: &Snapshot) -> String {
    format!(
        "{} objects, {} payloads, {} in {:.1} s ({}/s)",
        s.objects,
        s.payloads_done,
        human_bytes(s.bytes_done),
        s.elapsed,
        human_bytes(s.rate() as u64)
    )
}

/// How progress is shown while a sync runs: a bar on a terminal, a line
/// every few seconds otherwise, nothing with `--json`.
struct Shown {
    progress: Arc<Progress>,
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Shown {
    fn start(progress: Arc<Progress>, verb: &'static str, quiet: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(verb);
            bar
        });
        let ticker = (!quiet).then(|| {
            let (progress, stop, bar) = (progress.clone(), stop.clone(), bar.clone());
            std::thread::spawn(move || {
                let mut ticks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    ticks += 1;
                    let s = progress.snapshot();
                    match &bar {
                        Some(bar) => {
                            bar.set_length(s.bytes_total);
                            bar.set_position(s.bytes_done);
                            bar.set_message(format!(
                                "{} objects, {}/{} payloads",
                                s.objects, s.payloads_done, s.payloads_total
                            ));
                        }
                        // Plain lines for logs: every 5 s of a long sync.
                        None if ticks % 50 == 0 => eprintln!(
                            "{verb}: {} objects, {}/{} payloads, {}/{} ({}/s)",
                            s.objects,
                            s.payloads_done,
                            s.payloads_total,
                            human_bytes(s.bytes_done),
                            human_bytes(s.bytes_total),
                            human_bytes(s.rate() as u64)
                        ),
                        None => {}
                    }
                }
            })
        });
        Self {
            progress,
            bar,
            quiet,
            stop,
            ticker,
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if !self.quiet => eprintln!("{text}"),
            None => {}
        }
    }

    fn finish(&self) -> Snapshot {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.progress.snapshot()
    }
}

/// Stops the ticker and clears the bar however the sync ended.
impl Drop for Shown {
    fn drop(&mut self) {
        self.finish();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// Before a runtime of `spec` starts: whatever of it the local
/// repositories do not hold is pulled from the remotes, in order — tags
/// and objects only (payloads come when files are first opened), or
/// everything with `sync_all`, as upstream's `spfs run` does.
pub(crate) fn bring_local(
    config: &Config,
    repos: &RepositorySet,
    spec: &str,
    sync_all: bool,
    transfer: &Transfer,
) -> CliResult {
    let remotes: Vec<Arc<dyn Store>> = match &transfer.remote {
        // Named: pulled from, whatever its kind (a file:// one too).
        Some(name) => vec![spfs_remote::open_named(config, name)?],
        None => spfs_remote::configured(config)
            .iter()
            .filter(|r| crate::stack::is_remote(&r.address))
            .map(spfs_remote::open)
            .collect::<Result<_, _>>()?,
    };
    if remotes.is_empty() {
        return Ok(());
    }
    let parsed = EnvSpec::parse(spec)?;
    let mut items = Vec::new();
    spfs_remote::sync::flatten(&parsed.items, &mut items);
    let local = LocalStore::local(repos.primary().clone());
    let options = transfer.options(sync_all);
    let progress = Arc::new(Progress::new());
    let quiet = match transfer.progress {
        Some(shown) => !shown,
        None => !std::io::stderr().is_terminal(),
    };
    let shown = Shown::start(progress.clone(), "pull", quiet);
    for item in items {
        let here = repos.resolve_item(item).is_ok();
        if here && !sync_all && !transfer.walks_what_is_here() {
            continue;
        }
        let item_text = item.to_string();
        match spfs_remote::pull_from_first(&remotes, &local, &item_text, options, &progress) {
            Ok(done) => {
                for (s, from) in done {
                    shown.line(&format!("pulled {} from {from}", describe(&s)));
                }
            }
            // Local, and on no remote: run what is here.
            Err(spfs_remote::Error::UnknownReference { .. }) if here => {}
            Err(spfs_remote::Error::UnknownReference { reference, remote }) => {
                return Err(format!(
                    "unknown reference '{reference}': not in the local repository {}, nor in {remote}",
                    repos.primary().root().display()
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
