//! FUSE requests counted by the kernel: the `fuse:fuse_request_send`
//! tracepoint, in a tracing instance of our own (so nothing else's tracing
//! is touched), filtered to one connection. A count does not depend on
//! this machine's noise, and it is what decides how a Mac fares, where
//! every request crosses into macFUSE's daemon.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const TRACEFS: &str = "/sys/kernel/tracing";

/// Requests sent to one FUSE connection while it is alive; the instance
/// goes when it is dropped.
pub struct Counter {
    instance: PathBuf,
}

/// Requests by name (`LOOKUP`, `READ`…), and whether the kernel's buffer
/// lost some (then the figures are lower bounds).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub by_op: BTreeMap<String, u64>,
    pub lost: bool,
}

impl Counts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.by_op.values().sum()
    }

    /// `N (LOOKUP a, GETATTR b, …)`: the total and the three largest.
    pub fn text(&self) -> String {
        if self.by_op.is_empty() {
            return format!("{}0", if self.lost { "≥" } else { "" });
        }
        let mut ops: Vec<(&String, &u64)> = self.by_op.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = ops
            .iter()
            .take(3)
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        format!(
            "{}{} ({})",
            if self.lost { "≥" } else { "" },
            self.total(),
            top.join(", ")
        )
    }
}

/// The kernel's connection number of the FUSE file system holding `path`
/// (the minor of its anonymous device).
pub fn connection_of(path: &Path) -> std::io::Result<u64> {
    let dev = std::fs::metadata(path)?.dev();
    Ok((dev & 0xff) | ((dev >> 12) & 0xfff_ff00))
}

impl Counter {
    /// Starts counting requests to `connection`; `None` (with why) where
    /// the kernel has no FUSE tracepoints or this is not root.
    pub fn start(connection: u64) -> Result<Counter, String> {
        let events = Path::new(TRACEFS).join("events/fuse/fuse_request_send");
        if !events.exists() {
            return Err(format!(
                "no {} (tracefs mounted, a kernel with FUSE tracepoints, root)",
                events.display()
            ));
        }
        let instance = Path::new(TRACEFS)
            .join("instances")
            .join(format!("fsbench-{}", std::process::id()));
        std::fs::create_dir(&instance).map_err(|e| format!("{}: {e}", instance.display()))?;
        let c = Counter { instance };
        let set = |rel: &str, value: &str| {
            std::fs::write(c.instance.join(rel), value)
                .map_err(|e| format!("{}: {e}", c.instance.join(rel).display()))
        };
        set("buffer_size_kb", "65536")?;
        let event = "events/fuse/fuse_request_send";
        set(
            &format!("{event}/filter"),
            &format!("connection == {connection}"),
        )?;
        set(&format!("{event}/enable"), "1")?;
        c.clear()?;
        Ok(c)
    }

    /// Forgets what was counted so far.
    pub fn clear(&self) -> Result<(), String> {
        // Opening `trace` for writing with truncation empties the buffer.
        std::fs::write(self.instance.join("trace"), "")
            .map_err(|e| format!("{}: {e}", self.instance.display()))
    }

    /// What was counted since the last clear.
    pub fn read(&self) -> Result<Counts, String> {
        let text = std::fs::read_to_string(self.instance.join("trace"))
            .map_err(|e| format!("{}: {e}", self.instance.display()))?;
        let mut counts = Counts::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some(op) = opcode_name(line) {
                *counts.by_op.entry(op.to_owned()).or_default() += 1;
            }
        }
        counts.lost = self.overrun();
        Ok(counts)
    }

    /// Whether the buffer dropped events (an `overrun` above 0 on a CPU).
    fn overrun(&self) -> bool {
        let Ok(cpus) = std::fs::read_dir(self.instance.join("per_cpu")) else {
            return false;
        };
        cpus.flatten().any(|cpu| {
            std::fs::read_to_string(cpu.path().join("stats")).is_ok_and(|s| {
                s.lines().any(|l| {
                    l.strip_prefix("overrun:")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
        })
    }
}

/// `LOOKUP` of a line `… opcode 1 (FUSE_LOOKUP) len 52`.
fn opcode_name(line: &str) -> Option<&str> {
    let rest = &line[line.find("(FUSE_")? + "(FUSE_".len()..];
    Some(&rest[..rest.find(')')?])
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.instance.join("events/fuse/fuse_request_send/enable"),
            "0",
        );
        let _ = std::fs::remove_dir(&self.instance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_line_names_its_request() {
        let line = " cat-123 [001] ..... 10.5: fuse_request_send: connection 45 req 8 opcode 1 (FUSE_LOOKUP) len 52";
        assert_eq!(opcode_name(line), Some("LOOKUP"));
        assert_eq!(opcode_name("# tracer: nop"), None);
    }

    #[test]
    fn counts_print_the_total_and_the_largest() {
        let mut c = Counts::default();
        for (op, n) in [("LOOKUP", 5), ("READ", 9), ("GETATTR", 1), ("OPEN", 2)] {
            c.by_op.insert(op.into(), n);
        }
        assert_eq!(c.text(), "17 (READ 9, LOOKUP 5, OPEN 2)");
    }
}
