//! `fsbench remote`: studio remotes. Upstream's own `spfs server` serves
//! an environment of many small files and a few large ones; we measure,
//! side by side in one run, the time to a first command in a runtime of
//! it with an empty local repository — ours lazy (objects first,
//! payloads on first open) and ours `--sync-all` — against pulling it
//! whole, ours and upstream's `spfs pull`; then the throughput of pulling
//! one large payload, ours and upstream's, against `curl` of the same
//! HTTP URL.
//!
//! Each round starts from an empty local repository; the server's files
//! stay in the page cache, so these are network-and-CPU figures on
//! loopback, not disk reads on the server.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::Digest as _;

use crate::peers::OurService;
use crate::Res;

/// The data set's shape.
struct Shape {
    small_files: usize,
    large_files: usize,
    large_mib: usize,
    big_mib: usize,
}

const FULL: Shape = Shape {
    small_files: 5000,
    large_files: 4,
    large_mib: 32,
    big_mib: 512,
};

const QUICK: Shape = Shape {
    small_files: 500,
    large_files: 1,
    large_mib: 8,
    big_mib: 64,
};

/// One measured row: every round's seconds.
#[derive(Serialize)]
struct Row {
    what: String,
    seconds: Vec<f64>,
    /// Bytes moved, for a throughput (0: no throughput is meant).
    bytes: u64,
}

impl Row {
    fn median(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }
}

struct Server {
    child: Child,
    grpc: String,
    http: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Res<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_server(spfs: &Path, repo: &Path, dir: &Path) -> Res<Server> {
    let (grpc, http) = (free_port()?, free_port()?);
    let child = Command::new(spfs)
        .args([
            "server",
            &format!("127.0.0.1:{grpc}"),
            &format!("127.0.0.1:{http}"),
            "--payloads-root",
            &format!("http://127.0.0.1:{http}"),
        ])
        .env_clear()
        .env("SPFS_STORAGE_ROOT", repo)
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .spawn()?;
    let server = Server {
        child,
        grpc: format!("grpc://127.0.0.1:{grpc}"),
        http: format!("http://127.0.0.1:{http}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", grpc)).is_err()
        || TcpStream::connect(("127.0.0.1", http)).is_err()
    {
        if Instant::now() > deadline {
            return Err("upstream's spfs server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// Writes the environment's files under `dir`; returns the bytes written.
fn write_env(dir: &Path, shape: &Shape) -> Res<u64> {
    let mut total = 0u64;
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..shape.small_files {
        let d = dir.join(format!("pkg{:03}/lib/d{}", i % 100, i % 7));
        std::fs::create_dir_all(&d)?;
        let len = 1024 + (next() % 3072) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        std::fs::write(d.join(format!("f{i}.txt")), &bytes)?;
        total += len as u64;
    }
    for i in 0..shape.large_files {
        total += write_large(
            &dir.join(format!("data/large{i}.bin")),
            shape.large_mib,
            i as u64,
        )?;
    }
    Ok(total)
}

/// A file of `mib` MiB of incompressible bytes; returns its size.
fn write_large(path: &Path, mib: usize, seed: u64) -> Res<u64> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut state = 0x9E3779B97F4A7C15u64 ^ seed.wrapping_mul(0xff51afd7ed558ccd);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok((mib as u64) << 20)
}

fn sha256_digest_text(path: &Path) -> Res<String> {
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut h)?;
    let bytes: [u8; 32] = h.finalize().into();
    Ok(spfs_fuse_macos::repo::Digest::from_bytes(bytes).to_string())
}

fn check(out: std::process::Output, what: &str) -> Res<()> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into())
    }
}

/// Times `make()` on a fresh empty local repository at `local`.
fn timed(local: &Path, what: &str, mut make: impl FnMut(&Path) -> Command) -> Res<f64> {
    let _ = std::fs::remove_dir_all(local);
    let mut c = make(local);
    let t = Instant::now();
    let out = c.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let secs = t.elapsed().as_secs_f64();
    check(out, what)?;
    Ok(secs)
}

pub fn run(exe: &Path, quick: bool, rounds: usize, dir: &Path) -> Res<u8> {
    let shape = if quick { QUICK } else { FULL };
    let spfs = crate::upstream_spfs().ok_or(
        "upstream's spfs (with its server command) is needed: ../shared/peers/spfs-0.44/spfs or SPFS_BIN",
    )?;
    let ours = crate::our_binary(exe);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let server_repo = dir.join("server-repo");
    eprintln!(
        "remote: writing the data set ({} small files, {} × {} MiB, and {} MiB)...",
        shape.small_files, shape.large_files, shape.large_mib, shape.big_mib
    );
    let env_dir = dir.join("env");
    let env_bytes = write_env(&env_dir, &shape)?;
    let big_dir = dir.join("big");
    let big_bytes = write_large(&big_dir.join("large.bin"), shape.big_mib, 99)?;
    let big_digest = sha256_digest_text(&big_dir.join("large.bin"))?;
    for (src, tag) in [(&env_dir, "bench/env"), (&big_dir, "bench/big")] {
        let out = Command::new(&ours)
            .args(["commit", "--path"])
            .arg(src)
            .args(["-t", tag])
            .env("SPFS_STORAGE_ROOT", &server_repo)
            .output()?;
        check(out, "committing the data set")?;
    }
    std::fs::remove_dir_all(&env_dir)?;
    std::fs::remove_dir_all(&big_dir)?;
    let server = start_server(&spfs, &server_repo, &dir)?;
    let svc = OurService::start(&ours, &dir.join("unused-repo"), &dir.join("service"))?;
    let local = dir.join("local");
    let ours_cmd = |local: &Path, args: &[&str]| {
        let mut c = Command::new(&ours);
        c.args(args)
            .envs(svc.env.iter().map(|(k, v)| (k, v)))
            .env("SPFS_STORAGE_ROOT", local)
            .env("SPFS_REMOTE_origin_ADDRESS", &server.grpc);
        c
    };
    let upstream_cmd = |local: &Path, args: &[&str]| {
        let mut c = Command::new(&spfs);
        c.args(args)
            .env_clear()
            .env("HOME", &dir)
            .env("SPFS_STORAGE_ROOT", local)
            .env("SPFS_REMOTE_origin_ADDRESS", &server.grpc);
        c
    };
    let mount = svc.mount.display().to_string();
    let read_big = format!("cat {mount}/large.bin > /dev/null");
    let read_one_small = format!("cat {mount}/pkg000/lib/d0/f0.txt > /dev/null");
    let url = format!("{}/{}", server.http, big_digest);
    let scratch_file = dir.join("curl.out");
    type Make<'a> = Box<dyn Fn(&Path) -> Command + 'a>;
    let rows_spec: Vec<(String, u64, Make)> = vec![
        (
            "env: ours run → first command (lazy)".into(),
            0,
            Box::new(|l: &Path| ours_cmd(l, &["run", "bench/env", "--", "true"])),
        ),
        (
            "env: ours run → first command reading one file (lazy)".into(),
            0,
            Box::new(|l: &Path| {
                ours_cmd(l, &["run", "bench/env", "--", "sh", "-c", &read_one_small])
            }),
        ),
        (
            "env: ours run --sync-all → first command".into(),
            env_bytes,
            Box::new(|l: &Path| ours_cmd(l, &["run", "--sync-all", "bench/env", "--", "true"])),
        ),
        (
            "env: ours pull".into(),
            env_bytes,
            Box::new(|l: &Path| ours_cmd(l, &["pull", "bench/env"])),
        ),
        (
            "env: upstream spfs pull".into(),
            env_bytes,
            Box::new(|l: &Path| upstream_cmd(l, &["pull", "--from", "origin", "bench/env"])),
        ),
        (
            format!("{} MiB payload: ours pull", shape.big_mib),
            big_bytes,
            Box::new(|l: &Path| ours_cmd(l, &["pull", "bench/big"])),
        ),
        (
            format!("{} MiB payload: upstream spfs pull", shape.big_mib),
            big_bytes,
            Box::new(|l: &Path| upstream_cmd(l, &["pull", "--from", "origin", "bench/big"])),
        ),
        (
            format!("{} MiB payload: ours run, first read (lazy)", shape.big_mib),
            big_bytes,
            Box::new(|l: &Path| ours_cmd(l, &["run", "bench/big", "--", "sh", "-c", &read_big])),
        ),
        (
            format!("{} MiB payload: curl to /dev/null", shape.big_mib),
            big_bytes,
            Box::new(|_: &Path| {
                let mut c = Command::new("curl");
                c.args(["-sSf", "-o", "/dev/null", &url]);
                c
            }),
        ),
        (
            format!("{} MiB payload: curl to a file", shape.big_mib),
            big_bytes,
            Box::new(|_: &Path| {
                let mut c = Command::new("curl");
                c.args(["-sSf", "-o"]).arg(&scratch_file).arg(&url);
                c
            }),
        ),
    ];
    let mut rows: Vec<Row> = rows_spec
        .iter()
        .map(|(what, bytes, _)| Row {
            what: what.clone(),
            seconds: Vec::new(),
            bytes: *bytes,
        })
        .collect();
    for round in 0..rounds.max(1) {
        eprintln!("remote: round {}/{}", round + 1, rounds.max(1));
        // Rows rotate each round, so none always runs first.
        let n = rows_spec.len();
        for k in 0..n {
            let i = (k + round) % n;
            let (what, _, make) = &rows_spec[i];
            let secs = timed(&local, what, |l| make(l))?;
            rows[i].seconds.push(secs);
        }
    }
    let _ = std::fs::remove_file(&scratch_file);
    let _ = std::fs::remove_dir_all(&local);
    println!("{}", table(&rows, rounds.max(1)));
    let out = Path::new("target/fsbench/remote.json");
    if let Some(p) = out.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(
        out,
        serde_json::to_string_pretty(&serde_json::json!({
            "machine": crate::report::Machine::describe(),
            "rounds": rounds.max(1),
            "small_files": shape.small_files,
            "large_files": shape.large_files,
            "large_mib": shape.large_mib,
            "big_mib": shape.big_mib,
            "rows": rows,
        }))?,
    )?;
    eprintln!("remote: every measurement in {}", out.display());
    Ok(0)
}

fn table(rows: &[Row], rounds: usize) -> String {
    let mut s =
        "| what | median s | min–max s | MiB/s (median) |\n|---|---:|---:|---:|\n".to_owned();
    for r in rows {
        let min = r.seconds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.seconds.iter().copied().fold(0.0, f64::max);
        let med = r.median();
        let rate = if r.bytes == 0 {
            "—".to_owned()
        } else {
            format!("{:.0}", r.bytes as f64 / 1048576.0 / med)
        };
        s.push_str(&format!(
            "| {} | {:.3} | {:.3}–{:.3} | {rate} |\n",
            r.what, med, min, max
        ));
    }
    s.push_str(&format!(
        "\n({rounds} rounds; each from an empty local repository)\n"
    ));
    s
}
