//! The router on the hot path of every FUSE request: ancestry lookups
//! (uncached: walk /proc and open pidfds; cached: one liveness check), and a
//! cached route with 1, 10 and 100 runtimes registered. The group names,
//! `ancestry_lookup` and `route_lookup`, are design note 4.7's. The router
//! reads ancestry through `sys::process`, so on macOS this bench measures
//! the macOS code path (`proc_pidinfo`), on Linux the `/proc` one.

use std::process::{Child, Command, Stdio};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use spfs_fuse_macos::router::Router;

struct Procs(Vec<Child>);
impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// A root shell with a grandchild: `sh` (root) -> `sleep` (member).
fn tree() -> (Child, u32) {
    let mut root = Command::new("sh")
        .arg("-c")
        .arg("sleep 600 & echo $!; wait")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(root.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    (root, line.trim().parse().unwrap())
}

fn bench(c: &mut Criterion) {
    let (root, member) = tree();
    let mut procs = Procs(vec![root]);
    let root_pid = procs.0[0].id();

    let mut g = c.benchmark_group("ancestry_lookup");
    g.bench_function("uncached", |b| {
        b.iter_batched(
            || {
                let r = Router::new();
                r.register_root(root_pid, 1, "t").unwrap();
                r
            },
            |r| assert_eq!(r.route(member), Some(1)),
            BatchSize::SmallInput,
        )
    });
    let r = Router::new();
    r.register_root(root_pid, 1, "t").unwrap();
    r.route(member);
    g.bench_function("cached", |b| {
        b.iter(|| assert_eq!(r.route(member), Some(1)))
    });
    g.finish();

    let mut g = c.benchmark_group("route_lookup");
    for n in [1usize, 10, 100] {
        let r = Router::new();
        let mut roots = Vec::new();
        for i in 0..n - 1 {
            let p = sleeper();
            r.register_root(p.id(), 100 + i as u64, &format!("t{i}"))
                .unwrap();
            roots.push(p);
        }
        r.register_root(root_pid, 1, "t").unwrap();
        r.route(member);
        g.bench_function(format!("{n}_runtimes"), |b| {
            b.iter(|| assert_eq!(r.route(member), Some(1)))
        });
        procs.0.extend(roots);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
