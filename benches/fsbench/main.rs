//! `fsbench`: one command that compares this project's service with every
//! peer on this machine, in one run, on one data set — and says how cost
//! grows. See `docs/benchmarks.md` for how to read what it prints.
//!
//! ```text
//! scripts/bench [--rounds N] [--quick] [--baseline FILE] [--save-baseline FILE]
//! ```
//!
//! Every workload runs in a worker process (`fsbench worker`) inside the
//! peer's view (ours: inside a runtime, started by `spfs-fuse-macos run`),
//! times itself, and reports a digest of what it saw; a result that
//! differs from the plain directory's is marked WRONG and fails the run.

mod dataset;
mod dev;
mod fuse_trace;
mod peers;
mod remote;
mod report;
mod scale;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

use dataset::Size;
use peers::{Layout, OurService, Peer, UpstreamMount};
use report::Measurement;
use workloads::Outcome;

#[derive(Parser)]
#[command(
    name = "fsbench",
    about = "Compare SPFS for macOS with every peer on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Rounds of every workload on every peer (peers interleaved).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// A small data set and fewer growth rows (a quick look, not figures).
    #[arg(long)]
    quick: bool,
    /// Only these peers (ours, spfs-fuse, fuse-overlayfs, overlayfs, plain).
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Where every measurement goes, as JSON.
    #[arg(long, default_value = "target/fsbench/latest.json")]
    out: PathBuf,
    /// Compare with a baseline saved earlier; rows that moved beyond the
    /// noise are listed (and make the exit status 3).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Save this run's rows as a baseline.
    #[arg(long, value_name = "FILE")]
    save_baseline: Option<PathBuf>,
    /// Skip the growth rows.
    #[arg(long)]
    no_scale: bool,
    /// Work directory (data set, repository, views).
    #[arg(long, default_value = "target/fsbench/work")]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// (internal) Run workloads inside a view and print their outcomes.
    Worker {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        quick: bool,
        #[arg(long)]
        masks: bool,
        #[arg(long)]
        cold: bool,
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
    },
    /// Studio remotes: time to a first command from upstream's spfs
    /// server (lazy and --sync-all) beside upstream's pull, and payload
    /// throughput beside curl.
    Remote {
        /// Rounds (rows rotated each round).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// A small data set (a quick look, not figures).
        #[arg(long)]
        quick: bool,
        /// Work directory.
        #[arg(long, default_value = "target/fsbench/remote")]
        dir: PathBuf,
    },
    /// What developers run: Python imports, a C build, git, unpacking a
    /// tarball and committing it, on ours beside the overlays and a plain
    /// directory, with the FUSE requests each took (root).
    Dev {
        /// Rounds (peers rotated each round).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Small trees (a quick look, not figures).
        #[arg(long)]
        quick: bool,
        /// Work directory.
        #[arg(long, default_value = "target/fsbench/dev")]
        dir: PathBuf,
        /// Where every measurement goes, as JSON.
        #[arg(long, default_value = "target/fsbench/dev.json")]
        out: PathBuf,
        /// Another build of `spfs-fuse-macos` to run beside ours (as
        /// "ours-before"): a change measured before and after, same run.
        #[arg(long, value_name = "BIN")]
        before: Option<PathBuf>,
    },
    /// (internal) Run the developer workloads inside a view.
    DevWorker(dev::WorkerArgs),
    /// (internal) Measure one growth row in a process of its own.
    Child {
        what: String,
        n: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

/// Everything a run writes to its JSON file.
#[derive(Serialize, Deserialize)]
struct Results {
    machine: report::Machine,
    size: Size,
    rounds: usize,
    peers: Vec<String>,
    skipped: Vec<String>,
    measurements: Vec<Measurement>,
    summary: Vec<report::Summary>,
    growth: Vec<scale::Row>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Cmd::Worker {
            root,
            quick,
            masks,
            cold,
            workloads,
        }) => worker(&root, quick, masks, cold, &workloads),
        Some(Cmd::Child { what, n, dir, path }) => child(&what, n, dir, path),
        Some(Cmd::Remote { rounds, quick, dir }) => std::env::current_exe()
            .map_err(Into::into)
            .and_then(|exe| remote::run(&exe, quick, rounds, &dir)),
        Some(Cmd::Dev {
            rounds,
            quick,
            dir,
            out,
            before,
        }) => std::env::current_exe()
            .map_err(Into::into)
            .and_then(|exe| dev::run(&exe, quick, rounds, &dir, &out, before.as_deref())),
        Some(Cmd::DevWorker(args)) => dev::worker(&args),
        None => run(cli.run),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("fsbench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn size_of(quick: bool) -> Size {
    if quick {
        Size::QUICK
    } else {
        Size::DEFAULT
    }
}

fn plan(quick: bool, masks: bool) -> workloads::Plan {
    let size = size_of(quick);
    let (base, top) = dataset::layers(size, masks);
    workloads::Plan {
        merged: dataset::merge(&base, &top),
        top,
        size,
    }
}

fn worker(root: &Path, quick: bool, masks: bool, cold: bool, names: &[String]) -> Res<u8> {
    let plan = plan(quick, masks);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = workloads::run(&plan, root, &names, cold)?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(0)
}

fn child(what: &str, n: usize, dir: Option<PathBuf>, path: Option<PathBuf>) -> Res<u8> {
    let row = match what {
        "view" => scale::child_view(n),
        "commit" => scale::child_commit(n, &dir.ok_or("--dir is needed")?),
        "clean" => scale::child_clean(n, &dir.ok_or("--dir is needed")?),
        "copyup" => {
            let path = path.ok_or("--path is needed")?;
            if spfs_fuse_macos::sys::user::is_root() {
                workloads::drop_caches()?;
            }
            let t = Instant::now();
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)?
                .write_all(b"!")?;
            let secs = t.elapsed().as_secs_f64();
            scale::Row {
                what: "copy_up".into(),
                n: n as u64,
                secs,
                bytes: n as u64,
                note: format!("{:.0} MiB/s", n as f64 / 1048576.0 / secs),
            }
        }
        "churn" => {
            // N files of distinct names created and deleted, one at a
            // time, in directory --path (a build's temporary files).
            let path = path.ok_or("--path is needed")?;
            std::fs::create_dir_all(&path)?;
            let t = Instant::now();
            for i in 0..n {
                let p = path.join(format!("t{i}"));
                std::fs::File::create(&p)?;
                std::fs::remove_file(&p)?;
            }
            let secs = t.elapsed().as_secs_f64();
            scale::Row {
                what: "create_delete".into(),
                n: n as u64,
                secs,
                bytes: 0,
                note: format!("{:.0} pairs/s", n as f64 / secs),
            }
        }
        other => return Err(format!("no child '{other}'").into()),
    };
    println!("{}", serde_json::to_string(&row)?);
    Ok(0)
}

/// Which data set the worker works on.
#[derive(Clone, Copy)]
struct DataSet {
    quick: bool,
    masks: bool,
}

/// Runs the worker in `view` of `peer`; its outcomes.
fn in_view(
    peer: &Peer,
    view: &peers::View,
    exe: &Path,
    mountpoint: &Path,
    data: DataSet,
    cold: bool,
    names: &[&str],
) -> Res<Vec<Outcome>> {
    let mut c = peer.command(view, exe, "worker", mountpoint);
    if data.quick {
        c.arg("--quick");
    }
    if data.masks {
        c.arg("--masks");
    }
    if cold {
        c.arg("--cold");
    }
    c.arg("--workloads").arg(names.join(","));
    let out = c.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(format!("the worker failed on {}: {}", peer.name(), out.status).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn our_binary(exe: &Path) -> PathBuf {
    std::env::var_os("SPFS_FUSE_MACOS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| exe.with_file_name("spfs-fuse-macos"))
}

/// The optional material beside the project (the peers): `$SPFS_SHARED`,
/// or `../shared` next to the clone, as the tests find it.
fn shared_dir() -> PathBuf {
    std::env::var_os("SPFS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn upstream_fuse() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPFS_FUSE_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = shared_dir().join("peers/spfs-0.44/spfs-fuse");
    p.exists().then_some(p)
}

/// Upstream's `spfs` (for the commit rows): `SPFS_BIN`, or the release
/// build beside the project.
fn upstream_spfs() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPFS_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = shared_dir().join("peers/spfs-0.44/spfs");
    p.exists().then_some(p)
}

fn run(args: RunArgs) -> Res<u8> {
    let exe = std::env::current_exe()?;
    let root = spfs_fuse_macos::sys::user::is_root();
    let size = size_of(args.quick);
    let masks = root;
    let data = DataSet {
        quick: args.quick,
        masks,
    };
    let mut skipped = Vec::new();
    if !masks {
        skipped.push(
            "masks in the top layer: making whiteouts (character devices) needs root".to_owned(),
        );
    }
    if !root {
        skipped.push("the cold phase: dropping the kernel's caches needs root".to_owned());
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    let dir = args.dir.canonicalize()?;
    let layout = Layout {
        base: dir.join("base"),
        top: dir.join("top"),
        merged: dir.join("merged"),
        scratch: dir.join("views"),
    };
    eprintln!("fsbench: writing the data set in {}", dir.display());
    let (base, top) = dataset::layers(size, masks);
    dataset::write(&base, &layout.base)?;
    dataset::write(&top, &layout.top)?;
    dataset::write(&dataset::merge(&base, &top), &layout.merged)?;
    let repo_root = dir.join("repo");
    let spec = commit_data_set(&repo_root, &layout)?;

    // The peers there are, each said when absent.
    let want = |name: &str| args.peers.is_empty() || args.peers.iter().any(|p| p == name);
    let mut peers = Vec::new();
    let ours_bin = our_binary(&exe);
    let service = if want("ours") {
        if ours_bin.exists() {
            let s = OurService::start(&ours_bin, &repo_root, &dir.join("service"))?;
            peers.push(Peer::Ours {
                bin: ours_bin.clone(),
                env: s.env.clone(),
                spec: spec.clone(),
            });
            Some(s)
        } else {
            skipped.push(format!(
                "ours: no {} (build it, or set SPFS_FUSE_MACOS_BIN)",
                ours_bin.display()
            ));
            None
        }
    } else {
        None
    };
    let _upstream = match upstream_fuse().filter(|_| want("spfs-fuse")) {
        Some(bin) => match UpstreamMount::start(&bin, &repo_root, &spec, &dir.join("upstream-mnt"))
        {
            Ok(m) => {
                peers.push(Peer::UpstreamFuse {
                    mount: m.mount.clone(),
                });
                Some(m)
            }
            Err(e) => {
                skipped.push(format!("spfs-fuse: {e}"));
                None
            }
        },
        None => {
            if want("spfs-fuse") {
                skipped.push("spfs-fuse: no binary (set SPFS_FUSE_BIN)".to_owned());
            }
            None
        }
    };
    if want("fuse-overlayfs") {
        if peers::on_path("fuse-overlayfs") {
            peers.push(Peer::FuseOverlayfs);
        } else {
            skipped.push("fuse-overlayfs: not installed".to_owned());
        }
    }
    if want("overlayfs") {
        if root {
            peers.push(Peer::KernelOverlay);
        } else {
            skipped.push("overlayfs (kernel): mounting it needs root".to_owned());
        }
    }
    peers.push(Peer::Plain);
    for s in &skipped {
        eprintln!("fsbench: skipped {s}");
    }
    let mountpoint = service
        .as_ref()
        .map(|s| s.mount.clone())
        .unwrap_or_default();

    // The ground truth: the workloads on the plain directory, written from
    // the data set's description.
    let plain = Peer::Plain;
    let reads: Vec<&str> = workloads::READ.to_vec();
    let writes: Vec<&str> = workloads::WRITE.to_vec();
    let truth_read = in_view(
        &plain,
        &plain.view(&layout, false, 0)?,
        &exe,
        &mountpoint,
        data,
        false,
        &reads,
    )?;
    let truth_write = in_view(
        &plain,
        &plain.view(&layout, true, 0)?,
        &exe,
        &mountpoint,
        data,
        false,
        &writes,
    )?;
    let truth = |w: &str| {
        truth_read
            .iter()
            .chain(&truth_write)
            .find(|o| o.workload == w)
            .map(|o| o.result.clone())
    };

    let phases: Vec<bool> = if root { vec![true, false] } else { vec![false] };
    let mut measurements = Vec::new();
    let mut n = 1;
    let started = Instant::now();
    for round in 0..args.rounds {
        // Interleaved: each round starts with another peer.
        let order: Vec<&Peer> = (0..peers.len())
            .map(|i| &peers[(i + round) % peers.len()])
            .collect();
        for peer in order {
            let mut sets: Vec<(bool, Vec<&str>, bool)> = phases
                .iter()
                .map(|cold| (false, reads.clone(), *cold))
                .collect();
            if peer.writable() {
                sets.push((true, writes.clone(), root));
            }
            for (writable, names, cold) in sets {
                n += 1;
                let view = peer.view(&layout, writable, n)?;
                let outcomes = in_view(peer, &view, &exe, &mountpoint, data, cold, &names)?;
                drop(view);
                for o in outcomes {
                    let correct = truth(&o.workload).as_deref() == Some(o.result.as_str());
                    if !correct {
                        eprintln!(
                            "fsbench: WRONG: {} on {} saw {}",
                            o.workload,
                            peer.name(),
                            o.result
                        );
                    }
                    measurements.push(Measurement {
                        peer: peer.name().to_owned(),
                        workload: o.workload,
                        phase: if cold { "cold" } else { "warm" }.to_owned(),
                        round,
                        secs: o.secs,
                        correct,
                    });
                }
            }
        }
        eprintln!(
            "fsbench: round {} of {} done ({:.0} s)",
            round + 1,
            args.rounds,
            started.elapsed().as_secs_f64()
        );
    }
    let summary = report::summarize(&measurements);
    let names: Vec<&str> = peers.iter().map(Peer::name).collect();
    println!("\n## Workloads (median of {} rounds; ratio to the kernel overlay; ± half the min–max spread)\n", args.rounds);
    print!("{}", report::table(&summary, &names));

    let growth = if args.no_scale {
        Vec::new()
    } else {
        growth(&exe, &dir, args.quick, service.as_ref(), &spec)?
    };
    if !growth.is_empty() {
        println!("\n## How cost grows\n");
        print!("{}", scale::table(&growth));
    }
    drop(service);

    let wrong = summary.iter().any(|r| !r.correct);
    let results = Results {
        machine: report::Machine::describe(),
        size,
        rounds: args.rounds,
        peers: names.iter().map(|s| s.to_string()).collect(),
        skipped,
        measurements,
        summary,
        growth,
    };
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&results)?)?;
    println!("\nevery measurement: {}", args.out.display());
    let mut code = 0;
    if let Some(base) = &args.baseline {
        let old: Vec<report::Summary> = serde_json::from_slice(&std::fs::read(base)?)?;
        let moved = report::compare(&old, &results.summary);
        if moved.is_empty() {
            println!("against {}: nothing moved beyond the noise", base.display());
        } else {
            println!("against {}:", base.display());
            for (r, m) in &moved {
                println!("  {} {} on {}: {:?}", r.workload, r.phase, r.peer, m);
            }
            code = 3;
        }
    }
    if let Some(path) = &args.save_baseline {
        std::fs::write(path, serde_json::to_vec_pretty(&results.summary)?)?;
        println!("baseline saved: {}", path.display());
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    if wrong {
        eprintln!("fsbench: some peer gave a wrong answer (see WRONG above)");
        return Ok(1);
    }
    Ok(code)
}

/// Commits the two layers with our own writer, tags a platform of them
/// `bench/platform`; returns the spec to run.
fn commit_data_set(repo_root: &Path, l: &Layout) -> Res<String> {
    use spfs_fuse_macos::repo::tags::TagAuthor;
    use spfs_fuse_macos::repo::{commit, FsRepository, TagSpec};
    let repo = FsRepository::open_or_create(repo_root)?;
    let base = commit::commit_dir(&repo, &l.base)?.layer;
    let top = commit::commit_dir(&repo, &l.top)?.layer;
    let platform = commit::commit_platform(&repo, vec![base, top])?;
    repo.push_tag(
        &TagSpec::parse("bench/platform")?,
        platform,
        &TagAuthor("fsbench@localhost".into()),
    )?;
    Ok("bench/platform".into())
}

/// The growth rows.
fn growth(
    exe: &Path,
    dir: &Path,
    quick: bool,
    service: Option<&OurService>,
    spec: &str,
) -> Res<Vec<scale::Row>> {
    let mut rows = Vec::new();
    let entries: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for n in entries {
        eprintln!("fsbench: view of {n} entries");
        rows.push(scale::in_child(exe, &["view".into(), n.to_string()])?);
    }
    let files: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    for n in files {
        eprintln!("fsbench: commit of {n} files");
        let d = dir.join(format!("commit-{n}"));
        std::fs::create_dir_all(&d)?;
        rows.push(scale::in_child(
            exe,
            &[
                "commit".into(),
                n.to_string(),
                "--dir".into(),
                d.display().to_string(),
            ],
        )?);
        if let Some(spfs) = upstream_spfs() {
            match scale::upstream_commit(&spfs, *n, &d) {
                Ok(row) => rows.push(row),
                Err(e) => eprintln!("fsbench: upstream commit of {n} files: {e}"),
            }
        }
        let _ = std::fs::remove_dir_all(&d);
        eprintln!("fsbench: clean of {n} files nothing tags");
        std::fs::create_dir_all(&d)?;
        rows.push(scale::in_child(
            exe,
            &[
                "clean".into(),
                n.to_string(),
                "--dir".into(),
                d.display().to_string(),
            ],
        )?);
        let _ = std::fs::remove_dir_all(&d);
    }
    let Some(svc) = service else {
        return Ok(rows);
    };
    let counts: &[usize] = if quick { &[1, 10] } else { &[1, 10, 100] };
    for same in [true, false] {
        for &n in counts {
            eprintln!(
                "fsbench: {n} runtimes of {} stacks",
                if same { "one" } else { "different" }
            );
            rows.push(runtimes_row(exe, dir, svc, spec, n, same, quick)?);
        }
    }
    let pairs: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for &n in pairs {
        eprintln!("fsbench: {n} files created and deleted in an editable runtime");
        rows.push(churn_row(exe, svc, spec, n)?);
    }
    let sizes: &[usize] = if quick {
        &[1 << 20, 16 << 20]
    } else {
        &[1 << 20, 16 << 20, 256 << 20, 1 << 30]
    };
    let sizes_spec = commit_sizes(dir, sizes)?;
    for &n in sizes {
        eprintln!("fsbench: copy-up of {} MiB", n >> 20);
        let out = Command::new(&svc.bin)
            .envs(svc.env.iter().map(|(k, v)| (k, v)))
            .args(["run", "--edit", &sizes_spec, "--"])
            .arg(exe)
            .args(["child", "copyup", &n.to_string(), "--path"])
            .arg(svc.mount.join(format!("size-{n}")))
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(format!("copy-up of {n} bytes failed: {}", out.status).into());
        }
        rows.push(serde_json::from_slice(&out.stdout)?);
    }
    Ok(rows)
}

/// `n` files of distinct names created and deleted in one editable
/// runtime: the time, and the service's memory growth while the runtime
/// still runs (flat when the kernel's FORGET frees the nodes).
fn churn_row(exe: &Path, svc: &OurService, spec: &str, n: usize) -> Res<scale::Row> {
    use std::io::BufRead;
    let before = svc.rss();
    let script = format!("\"$0\" child churn {n} --path \"$1\" && exec sleep 3600",);
    let mut child = Idle(vec![Command::new(&svc.bin)
        .envs(svc.env.iter().map(|(k, v)| (k, v)))
        .args(["run", "--edit", spec, "--", "sh", "-c", &script])
        .arg(exe)
        .arg(svc.mount.join("churn"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?]);
    let mut line = String::new();
    let stdout = child.0[0].stdout.take().ok_or("no stdout")?;
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let after = svc.rss();
    drop(child);
    let mut row: scale::Row = serde_json::from_str(&line)
        .map_err(|e| format!("the churn of {n} files failed ({e}): {line}"))?;
    row.bytes = after.saturating_sub(before);
    row.note = format!(
        "{}; service growth {:.0} KiB ({:.1} B per file)",
        row.note,
        row.bytes as f64 / 1024.0,
        row.bytes as f64 / n as f64
    );
    Ok(row)
}

/// A layer of one file of each size, tagged `bench/sizes`.
fn commit_sizes(dir: &Path, sizes: &[usize]) -> Res<String> {
    use spfs_fuse_macos::repo::tags::TagAuthor;
    use spfs_fuse_macos::repo::{commit, FsRepository, TagSpec};
    let src = dir.join("sizes");
    std::fs::create_dir_all(&src)?;
    for &n in sizes {
        std::fs::write(src.join(format!("size-{n}")), dataset::content(n, n))?;
    }
    let repo = FsRepository::open(dir.join("repo"))?;
    let layer = commit::commit_dir(&repo, &src)?.layer;
    repo.push_tag(
        &TagSpec::parse("bench/sizes")?,
        layer,
        &TagAuthor("fsbench@localhost".into()),
    )?;
    std::fs::remove_dir_all(&src)?;
    Ok("bench/sizes".into())
}

/// Idle runtimes' processes, killed when dropped (also on an error).
struct Idle(Vec<std::process::Child>);

impl Drop for Idle {
    fn drop(&mut self) {
        for p in &mut self.0 {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

/// `n` idle runtimes (of one stack, or each of its own): the service's
/// memory per runtime, and a walk in one more runtime meanwhile.
fn runtimes_row(
    exe: &Path,
    dir: &Path,
    svc: &OurService,
    spec: &str,
    n: usize,
    same: bool,
    quick: bool,
) -> Res<scale::Row> {
    use spfs_fuse_macos::repo::tags::TagAuthor;
    use spfs_fuse_macos::repo::{commit, FsRepository, TagSpec};
    let specs: Vec<String> = if same {
        vec![spec.to_owned(); n]
    } else {
        let repo = FsRepository::open(dir.join("repo"))?;
        (0..n)
            .map(|k| -> Res<String> {
                let d = dir.join(format!("extra-{k}"));
                std::fs::create_dir_all(&d)?;
                std::fs::write(d.join(format!("only-in-{k}")), format!("{k}"))?;
                let layer = commit::commit_dir(&repo, &d)?.layer;
                std::fs::remove_dir_all(&d)?;
                let tag = format!("bench/extra{k}");
                repo.push_tag(
                    &TagSpec::parse(&tag)?,
                    layer,
                    &TagAuthor("fsbench@localhost".into()),
                )?;
                Ok(format!("{spec}+{tag}"))
            })
            .collect::<Res<_>>()?
    };
    let cli = |args: &[&str]| {
        let mut c = Command::new(&svc.bin);
        c.envs(svc.env.iter().map(|(k, v)| (k, v))).args(args);
        c
    };
    let before = svc.rss();
    let mut idle = Idle(Vec::new());
    for s in &specs {
        idle.0.push(
            cli(&["run", s, "--", "sleep", "3600"])
                .stdout(Stdio::null())
                .spawn()?,
        );
    }
    let listed = || -> usize {
        cli(&["runtime", "ls", "--json"])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).ok())
            .map_or(0, |v| v.iter().filter(|r| r["running"] == true).count())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while listed() < n {
        if Instant::now() > deadline {
            return Err(format!("{n} runtimes did not start in 60 s").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = svc.rss();
    // A warm walk in one more runtime, the others idle.
    let mut c = cli(&["run", spec, "--"]);
    c.arg(exe)
        .arg("worker")
        .arg("--root")
        .arg(&svc.mount)
        .args(["--workloads", "walk"]);
    if quick {
        c.arg("--quick");
    }
    if spfs_fuse_macos::sys::user::is_root() {
        c.arg("--masks");
    }
    let out = c.stderr(Stdio::inherit()).output()?;
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(30);
    while listed() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let walk: Vec<Outcome> = serde_json::from_slice(&out.stdout)?;
    let per = after.saturating_sub(before) / n as u64;
    Ok(scale::Row {
        what: if same { "runtimes_same_stack" } else { "runtimes_own_stacks" }.into(),
        n: n as u64,
        secs: walk.first().map_or(0.0, |o| o.secs),
        bytes: per,
        note: format!("time: a warm walk in one more runtime, {n} idle; memory: service growth per idle runtime ({:.0} KiB)", per as f64 / 1024.0),
    })
}
