//! `fsbench dev`: what a developer's day runs, not synthetic loops —
//! `import` of a large Python tree, `make -j2` of a C project, `git status`
//! and `git log -p` over a checkout, unpacking a tarball and committing
//! it — on our service (an editable runtime, and a read-only one where
//! nothing is written) beside fuse-overlayfs, the kernel's overlayfs and a
//! plain directory, in one run, every answer checked against the plain
//! directory's. Beside each time: the FUSE requests it took (counted by
//! the kernel's tracepoints), so a slow row says where its time goes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::fuse_trace::{self, Counts};
use crate::peers::{Layout, OurService, Peer};
use crate::Res;

/// How big the generated trees are.
#[derive(Clone, Copy)]
struct Shape {
    py_packages: usize,
    py_modules: usize,
    c_units: usize,
    c_headers: usize,
    git_dirs: usize,
    git_files: usize,
    tar_files: usize,
}

const FULL: Shape = Shape {
    py_packages: 40,
    py_modules: 50,
    c_units: 500,
    c_headers: 20,
    git_dirs: 200,
    git_files: 100,
    tar_files: 10_000,
};

const QUICK: Shape = Shape {
    py_packages: 4,
    py_modules: 25,
    c_units: 40,
    c_headers: 5,
    git_dirs: 10,
    git_files: 50,
    tar_files: 500,
};

/// Workloads of a writable view, in the order one worker runs them: the
/// unpack first, so a commit after it holds the unpacked tree alone.
const WRITE: [&str; 8] = [
    "untar",
    "commit",
    "py_import_cold",
    "py_import_warm",
    "make_lower",
    "make_upper",
    "git_status",
    "git_log",
];

/// Workloads of a read-only view.
const READ: [&str; 2] = ["py_import_ro", "git_log"];

/// One workload's time, what it saw, and the FUSE requests it took.
#[derive(Debug, Serialize, Deserialize)]
pub struct Outcome {
    workload: String,
    secs: f64,
    result: String,
    counts: Option<Counts>,
}

/// What the worker is told.
#[derive(clap::Args, Clone)]
pub struct WorkerArgs {
    /// The view's root.
    #[arg(long)]
    root: PathBuf,
    /// The tarball to unpack.
    #[arg(long)]
    tar: PathBuf,
    /// The Python interpreter (resolved once, past any shim).
    #[arg(long)]
    python: PathBuf,
    /// Count the FUSE requests the view's file system gets.
    #[arg(long)]
    count_fuse: bool,
    /// Commit the runtime's edits with this `spfs` (ours only).
    #[arg(long)]
    commit_with: Option<PathBuf>,
    /// The workloads, in order.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
}

/// The tag a commit in the worker pushes.
const COMMIT_TAG: &str = "bench/untar";

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `c`, failing with its stderr unless it succeeds; its stdout.
fn output(c: &mut Command) -> Res<Vec<u8>> {
    let out = c.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}",
            c,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(out.stdout)
}

fn digest_of(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    hex(h)
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(dir)
        .args(["-c", "safe.directory=*", "-c", "core.pager=cat"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_OPTIONAL_LOCKS", "1");
    c
}

/// The import of every module; prints the sum of their values.
fn python(a: &WorkerArgs, no_bytecode: bool) -> Command {
    let mut c = Command::new(&a.python);
    if no_bytecode {
        c.arg("-B");
    }
    c.args([
        "-c",
        "import sys; sys.path.insert(0, 'py'); import bench_py.everything as e; print(e.TOTAL)",
    ])
    .current_dir(&a.root)
    .env_remove("PYTHONDONTWRITEBYTECODE")
    .env_remove("PYTHONPYCACHEPREFIX");
    c
}

fn make(dir: &Path) -> Res<String> {
    output(
        Command::new("make")
            .args(["-s", "-j2", "--no-print-directory", "-C"])
            .arg(dir),
    )?;
    let out = output(&mut Command::new(dir.join("build/prog")))?;
    let objects = std::fs::read_dir(dir.join("build"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".o"))
        .count();
    Ok(format!(
        "{} from {objects} objects",
        String::from_utf8_lossy(&out).trim()
    ))
}

/// The untimed part that comes before a workload.
fn prepare(a: &WorkerArgs, name: &str) -> Res<()> {
    match name {
        // The same sources, written in the view first.
        "make_upper" => {
            output(
                Command::new("cp")
                    .arg("-a")
                    .arg(a.root.join("c"))
                    .arg(a.root.join("c-copy")),
            )?;
            let _ = std::fs::remove_dir_all(a.root.join("c-copy/build"));
        }
        // A status once, as a developer's first: it refreshes the index
        // (the files' times and inode numbers are the view's, not the
        // checkout's), so the timed one is the everyday one.
        "git_status" => {
            output(git(&a.root.join("git")).args(["status", "--porcelain"]))?;
        }
        _ => {}
    }
    Ok(())
}

fn one(a: &WorkerArgs, name: &str) -> Res<String> {
    Ok(match name {
        "untar" => {
            let dest = a.root.join("unpacked");
            std::fs::create_dir_all(&dest)?;
            output(
                Command::new("tar")
                    .arg("-xf")
                    .arg(&a.tar)
                    .arg("-C")
                    .arg(&dest),
            )?;
            crate::workloads::walk(&dest)?
        }
        "commit" => {
            let spfs = a.commit_with.as_ref().ok_or("commit: no --commit-with")?;
            output(Command::new(spfs).args(["commit", "layer", "-t", COMMIT_TAG]))?;
            latest_commit()?
        }
        "py_import_cold" | "py_import_warm" => String::from_utf8(output(&mut python(a, false))?)?,
        "py_import_ro" => String::from_utf8(output(&mut python(a, true))?)?,
        "make_lower" => make(&a.root.join("c"))?,
        "make_upper" => make(&a.root.join("c-copy"))?,
        "git_status" => digest_of(&output(
            git(&a.root.join("git")).args(["status", "--porcelain"]),
        )?),
        "git_log" => digest_of(&output(git(&a.root.join("git")).args(["log", "-p", "-5"]))?),
        other => return Err(format!("no workload '{other}'").into()),
    })
}

/// The layer the worker's commit tagged (read from the repository the
/// runtime's service uses).
fn latest_commit() -> Res<String> {
    use spfs_fuse_macos::repo::{FsRepository, TagSpec};
    let root = std::env::var_os("SPFS_STORAGE_ROOT").ok_or("commit: no SPFS_STORAGE_ROOT")?;
    let repo = FsRepository::open(PathBuf::from(root))?;
    let tag = repo
        .resolve_tag(&TagSpec::parse(COMMIT_TAG)?)?
        .ok_or("commit: no tag made")?;
    Ok(tag.target.to_string())
}

/// `fsbench dev-worker`: runs the workloads in the view, each timed alone
/// (and its FUSE requests counted), and prints their outcomes as JSON.
pub fn worker(a: &WorkerArgs) -> Res<u8> {
    let counter = if a.count_fuse {
        match fuse_trace::connection_of(&a.root)
            .map_err(|e| e.to_string())
            .and_then(fuse_trace::Counter::start)
        {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("fsbench: FUSE requests not counted: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut out = Vec::new();
    for name in &a.workloads {
        prepare(a, name)?;
        if let Some(c) = &counter {
            c.clear()?;
        }
        let t = Instant::now();
        let result = one(a, name)?;
        let secs = t.elapsed().as_secs_f64();
        let counts = counter.as_ref().map(|c| c.read()).transpose()?;
        out.push(Outcome {
            workload: name.clone(),
            secs,
            result: result.trim().to_owned(),
            counts,
        });
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(0)
}

/// Writes the Python package tree: `bench_py.pN.mM`, each module importing
/// the one before it in its package, each package importing its last
/// module, and `bench_py.everything` importing every package and summing
/// every module's value.
fn write_python(root: &Path, s: Shape) -> Res<u64> {
    let pkg = root.join("py/bench_py");
    std::fs::create_dir_all(&pkg)?;
    std::fs::write(pkg.join("__init__.py"), "")?;
    let mut total = 0u64;
    for p in 0..s.py_packages {
        let dir = pkg.join(format!("p{p}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("__init__.py"),
            format!("from bench_py.p{p} import m{}\n", s.py_modules - 1),
        )?;
        for m in 0..s.py_modules {
            let value = (p * 1000 + m) as u64;
            total += value;
            let mut text = String::new();
            if m > 0 {
                text.push_str(&format!("from bench_py.p{p} import m{}\n", m - 1));
            }
            text.push_str(&format!(
                "\"\"\"Module {m} of package {p}.\"\"\"\n\nVALUE = {value}\n\n\
                 class Thing{m}:\n    \"\"\"A class, so compiling has work.\"\"\"\n\n    \
                 def __init__(self, n):\n        self.n = n\n\n    \
                 def twice(self):\n        return [self.n * 2 for _ in range(3)]\n\n"
            ));
            for f in 0..8 {
                text.push_str(&format!(
                    "def f{f}(x, y={f}):\n    if x > y:\n        return {{'x': x, 'y': y, 'k': {f}}}\n    \
                     return sorted([x, y, {f}])\n\n"
                ));
            }
            std::fs::write(dir.join(format!("m{m}.py")), text)?;
        }
    }
    let mut everything = String::from("import sys\n");
    for p in 0..s.py_packages {
        everything.push_str(&format!("import bench_py.p{p}\n"));
    }
    everything.push_str(
        "TOTAL = sum(m.VALUE for n, m in list(sys.modules.items()) \
         if n.startswith('bench_py.p') and n.count('.') == 2)\n",
    );
    std::fs::write(pkg.join("everything.py"), everything)?;
    Ok(total)
}

/// Writes the C project: shared headers, one translation unit per
/// function, a main that sums them, and a Makefile writing to `build/`.
fn write_c(root: &Path, s: Shape) -> Res<()> {
    let c = root.join("c");
    for d in ["include", "src"] {
        std::fs::create_dir_all(c.join(d))?;
    }
    for h in 0..s.c_headers {
        let mut text =
            format!("#ifndef H{h}_H\n#define H{h}_H\n#include <stddef.h>\n#include <string.h>\n");
        for k in 0..40 {
            text.push_str(&format!(
                "struct s{h}_{k} {{ int a; long b; char name[16]; }};\n\
                 static inline int h{h}_{k}(int x) {{ return x * {k} + {h}; }}\n"
            ));
        }
        text.push_str("#endif\n");
        std::fs::write(c.join(format!("include/h{h}.h")), text)?;
    }
    for u in 0..s.c_units {
        let (a, b, d) = (
            u % s.c_headers,
            (u * 7 + 3) % s.c_headers,
            (u * 13 + 5) % s.c_headers,
        );
        std::fs::write(
            c.join(format!("src/u{u}.c")),
            format!(
                "#include <stdio.h>\n#include <stdlib.h>\n#include \"h{a}.h\"\n#include \"h{b}.h\"\n#include \"h{d}.h\"\n\
                 int f{u}(void) {{ struct s{a}_1 s; memset(&s, 0, sizeof s); return h{a}_1({u}) - h{a}_1(0) + s.a; }}\n"
            ),
        )?;
    }
    let mut main = String::from("#include <stdio.h>\n");
    for u in 0..s.c_units {
        main.push_str(&format!("int f{u}(void);\n"));
    }
    main.push_str("int main(void) {\n    long t = 0;\n");
    for u in 0..s.c_units {
        main.push_str(&format!("    t += f{u}();\n"));
    }
    main.push_str("    printf(\"%ld\\n\", t);\n    return 0;\n}\n");
    std::fs::write(c.join("main.c"), main)?;
    std::fs::write(
        c.join("Makefile"),
        "SRCS := $(wildcard src/*.c)\n\
         OBJS := $(SRCS:src/%.c=build/%.o) build/main.o\n\
         build/prog: $(OBJS)\n\tcc -o $@ $^\n\
         build/%.o: src/%.c | build\n\tcc -O0 -Iinclude -c -o $@ $<\n\
         build/main.o: main.c | build\n\tcc -O0 -c -o $@ $<\n\
         build:\n\tmkdir -p $@\n",
    )?;
    Ok(())
}

/// Writes a checkout of `git_dirs × git_files` files with five commits,
/// the later ones each changing a few files; packed, as a clone is.
fn write_git(root: &Path, s: Shape) -> Res<()> {
    let g = root.join("git");
    std::fs::create_dir_all(&g)?;
    output(git(&g).args(["init", "-q", "-b", "main"]))?;
    let line = "the quick brown fox jumps over the lazy dog\n";
    for d in 0..s.git_dirs {
        let dir = g.join(format!("src/mod{d:03}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..s.git_files {
            std::fs::write(
                dir.join(format!("file{f:03}.txt")),
                line.repeat(1 + (d + f) % 20),
            )?;
        }
    }
    let commit = |msg: &str| -> Res<()> {
        output(git(&g).args(["add", "-A"]))?;
        output(
            git(&g)
                .args([
                    "-c",
                    "user.name=fsbench",
                    "-c",
                    "user.email=fsbench@localhost",
                ])
                .args(["commit", "-q", "-m", msg])
                .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
                .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z"),
        )?;
        Ok(())
    };
    commit("the checkout")?;
    for c in 1..5 {
        for d in (0..s.git_dirs).step_by(s.git_dirs / 10 + 1) {
            let p = g.join(format!("src/mod{d:03}/file{c:03}.txt"));
            let mut f = std::fs::OpenOptions::new().append(true).open(p)?;
            writeln!(f, "change {c}")?;
        }
        commit(&format!("change {c}"))?;
    }
    output(git(&g).args(["gc", "-q"]))?;
    Ok(())
}

/// Writes the tarball: `tar_files` files of 1–8 KiB in 100 directories.
fn write_tarball(dir: &Path, tar: &Path, s: Shape) -> Res<()> {
    let src = dir.join("tar-src");
    for i in 0..s.tar_files {
        let d = src.join(format!("pkg/d{:02}", i % 100));
        std::fs::create_dir_all(&d)?;
        let len = 1024 * (1 + i % 8);
        let byte = b'a' + (i % 26) as u8;
        std::fs::write(d.join(format!("f{i:05}")), vec![byte; len])?;
    }
    output(
        Command::new("tar")
            .arg("-cf")
            .arg(tar)
            .arg("-C")
            .arg(&src)
            .arg("."),
    )?;
    std::fs::remove_dir_all(&src)?;
    Ok(())
}

/// The layer a commit of the unpacked tarball makes (the truth the
/// runtime's commit is checked against).
fn commit_truth(dir: &Path, tar: &Path) -> Res<String> {
    use spfs_fuse_macos::repo::{commit, FsRepository};
    let tree = dir.join("truth");
    let dest = tree.join("unpacked");
    std::fs::create_dir_all(&dest)?;
    output(Command::new("tar").arg("-xf").arg(tar).arg("-C").arg(&dest))?;
    let repo = FsRepository::open_or_create(dir.join("truth-repo"))?;
    let layer = commit::commit_dir(&repo, &tree)?.layer;
    std::fs::remove_dir_all(&tree)?;
    std::fs::remove_dir_all(dir.join("truth-repo"))?;
    Ok(layer.to_string())
}

/// The Python interpreter `python3` runs (past a pyenv shim).
fn real_python() -> Res<PathBuf> {
    let out = output(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]))?;
    Ok(PathBuf::from(String::from_utf8(out)?.trim()))
}

/// One measured run of one workload.
#[derive(Serialize)]
struct Measured {
    peer: String,
    workload: String,
    round: usize,
    secs: f64,
    correct: bool,
    counts: Option<Counts>,
}

/// `fsbench dev`: writes the trees, commits them as one layer, and runs
/// every workload on every peer, `rounds` times, peers interleaved;
/// `before`: another build of our service, run beside (a change's
/// before and after in one run).
pub fn run(
    exe: &Path,
    quick: bool,
    rounds: usize,
    dir: &Path,
    out: &Path,
    before: Option<&Path>,
) -> Res<u8> {
    let shape = if quick { QUICK } else { FULL };
    if !spfs_fuse_macos::sys::user::is_root() {
        return Err("fsbench dev mounts overlays and counts FUSE requests: run it as root".into());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let layer = dir.join("layer");
    eprintln!("fsbench dev: writing the trees in {}", layer.display());
    let total = write_python(&layer, shape)?;
    write_c(&layer, shape)?;
    write_git(&layer, shape)?;
    let tar = dir.join("unpack.tar");
    write_tarball(&dir, &tar, shape)?;
    let commit_truth = commit_truth(&dir, &tar)?;
    let python = real_python()?;

    eprintln!("fsbench dev: committing them as a layer");
    let repo_root = dir.join("repo");
    {
        use spfs_fuse_macos::repo::tags::TagAuthor;
        use spfs_fuse_macos::repo::{commit, FsRepository, TagSpec};
        let repo = FsRepository::open_or_create(&repo_root)?;
        let l = commit::commit_dir(&repo, &layer)?.layer;
        repo.push_tag(
            &TagSpec::parse("bench/dev")?,
            l,
            &TagAuthor("fsbench@localhost".into()),
        )?;
    }
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty)?;
    let layout = Layout {
        base: layer.clone(),
        top: empty,
        merged: layer.clone(),
        scratch: dir.join("views"),
    };
    let ours_bin = crate::our_binary(exe);
    let spfs_bin = exe.with_file_name("spfs");
    let service = OurService::start(&ours_bin, &repo_root, &dir.join("service"))?;
    // Each peer with its name in the table and (ours) its mount.
    let mut peers: Vec<(Peer, &str, PathBuf)> = vec![(
        Peer::Ours {
            bin: ours_bin.clone(),
            env: service.env.clone(),
            spec: "bench/dev".into(),
        },
        "ours",
        service.mount.clone(),
    )];
    let before_service = match before {
        Some(bin) => Some(OurService::start(
            bin,
            &repo_root,
            &dir.join("service-before"),
        )?),
        None => None,
    };
    if let Some(b) = &before_service {
        peers.push((
            Peer::Ours {
                bin: b.bin.clone(),
                env: b.env.clone(),
                spec: "bench/dev".into(),
            },
            "ours-before",
            b.mount.clone(),
        ));
    }
    if crate::peers::on_path("fuse-overlayfs") {
        peers.push((Peer::FuseOverlayfs, "fuse-overlayfs", PathBuf::new()));
    } else {
        eprintln!("fsbench dev: skipped fuse-overlayfs: not installed");
    }
    peers.push((Peer::KernelOverlay, "overlayfs", PathBuf::new()));
    peers.push((Peer::Plain, "plain", PathBuf::new()));

    let worker = |peer: &Peer,
                  mount: &Path,
                  writable: bool,
                  n: usize,
                  names: &[&str]|
     -> Res<Vec<Outcome>> {
        let view = peer.view(&layout, writable, n)?;
        let mut c = peer.command(&view, exe, "dev-worker", mount);
        c.arg("--tar").arg(&tar).arg("--python").arg(&python);
        if matches!(peer, Peer::Ours { .. } | Peer::FuseOverlayfs) {
            c.arg("--count-fuse");
        }
        let names: Vec<&str> = names
            .iter()
            .copied()
            .filter(|w| *w != "commit" || matches!(peer, Peer::Ours { .. }))
            .collect();
        if let Peer::Ours { .. } = peer {
            c.arg("--commit-with").arg(&spfs_bin);
        }
        c.arg("--workloads").arg(names.join(","));
        let out = c.stderr(Stdio::inherit()).output()?;
        drop(view);
        if !out.status.success() {
            return Err(format!("the dev worker failed on {}: {}", peer.name(), out.status).into());
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    };

    // The ground truth: the plain directory's answers.
    let plain = Peer::Plain;
    let truth: Vec<Outcome> = worker(&plain, Path::new(""), true, 0, &WRITE)?;
    let expected = |w: &str| -> Option<String> {
        match w {
            "commit" => Some(commit_truth.clone()),
            "py_import_cold" | "py_import_warm" | "py_import_ro" => Some(total.to_string()),
            _ => truth
                .iter()
                .find(|o| o.workload == w)
                .map(|o| o.result.clone()),
        }
    };
    let mut measured = Vec::new();
    let mut n = 1;
    let started = Instant::now();
    let mut wrong = false;
    for round in 0..rounds {
        for i in 0..peers.len() {
            let (peer, name, mount) = &peers[(i + round) % peers.len()];
            for (writable, names) in [(true, &WRITE[..]), (false, &READ[..])] {
                n += 1;
                let label = match (peer, writable) {
                    (Peer::Ours { .. }, true) => format!("{name} (editable)"),
                    (_, true) => (*name).to_owned(),
                    (_, false) => format!("{name} (read-only)"),
                };
                for o in worker(peer, mount, writable, n, names)? {
                    let correct = expected(&o.workload).as_deref() == Some(o.result.as_str());
                    if !correct {
                        wrong = true;
                        eprintln!(
                            "fsbench dev: WRONG: {} on {label} saw {}",
                            o.workload, o.result
                        );
                    }
                    measured.push(Measured {
                        peer: label.clone(),
                        workload: o.workload,
                        round,
                        secs: o.secs,
                        correct,
                        counts: o.counts,
                    });
                }
            }
        }
        eprintln!(
            "fsbench dev: round {} of {rounds} done ({:.0} s)",
            round + 1,
            started.elapsed().as_secs_f64()
        );
    }
    drop(service);
    drop(before_service);
    print!("{}", table(&measured, rounds));
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_vec_pretty(&measured)?)?;
    println!("\nevery measurement: {}", out.display());
    let _ = std::fs::remove_dir_all(&dir);
    if wrong {
        eprintln!("fsbench dev: some peer gave a wrong answer (see WRONG above)");
        return Ok(1);
    }
    Ok(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One table: a row per workload and view, the median time, its ratio to
/// the plain directory's, and the FUSE requests of the median run.
fn table(ms: &[Measured], rounds: usize) -> String {
    let mut s = format!(
        "\n## Developer workloads (median of {rounds} rounds; × = ratio to the plain directory)\n\n\
         | workload | view | s | × plain | FUSE requests (largest three) |\n|---|---|---:|---:|---|\n"
    );
    let mut workloads: Vec<&str> = Vec::new();
    let mut views: Vec<&str> = Vec::new();
    for m in ms {
        if !workloads.contains(&m.workload.as_str()) {
            workloads.push(&m.workload);
        }
        if !views.contains(&m.peer.as_str()) {
            views.push(&m.peer);
        }
    }
    for w in workloads {
        let plain_view = if READ.contains(&w)
            && ms
                .iter()
                .any(|m| m.peer == "plain (read-only)" && m.workload == w)
        {
            "plain (read-only)"
        } else {
            "plain"
        };
        let of = |v: &str| -> Vec<&Measured> {
            ms.iter()
                .filter(|m| m.workload == w && m.peer == v)
                .collect()
        };
        let plain = median(of(plain_view).iter().map(|m| m.secs).collect());
        for v in &views {
            let runs = of(v);
            if runs.is_empty() {
                continue;
            }
            let med = median(runs.iter().map(|m| m.secs).collect());
            let at_median = runs
                .iter()
                .min_by(|a, b| (a.secs - med).abs().total_cmp(&(b.secs - med).abs()))
                .and_then(|m| m.counts.as_ref())
                .map_or_else(|| "—".to_owned(), Counts::text);
            let ok = if runs.iter().all(|m| m.correct) {
                ""
            } else {
                " WRONG"
            };
            let ratio = if plain > 0.0 {
                format!("{:.2}", med / plain)
            } else {
                "—".to_owned()
            };
            s.push_str(&format!(
                "| {w} | {v} | {med:.3}{ok} | {ratio} | {at_median} |\n"
            ));
        }
    }
    s
}
