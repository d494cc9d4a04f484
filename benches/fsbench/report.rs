//! Medians and spreads, the table, the JSON file, and the comparison with
//! a saved baseline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One timed run of one workload on one peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub peer: String,
    pub workload: String,
    pub phase: String,
    pub round: usize,
    pub secs: f64,
    /// What it saw matched the ground truth.
    pub correct: bool,
}

/// A row: one workload, phase and peer over every round.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub peer: String,
    pub workload: String,
    pub phase: String,
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// Every run was correct.
    pub correct: bool,
}

impl Summary {
    /// (max - min) / median: how much this row moved within one run.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The rows of `ms`, in the order workloads and peers were first seen.
pub fn summarize(ms: &[Measurement]) -> Vec<Summary> {
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String, String), Vec<&Measurement>> = BTreeMap::new();
    for m in ms {
        let key = (m.workload.clone(), m.phase.clone(), m.peer.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(m);
    }
    order
        .into_iter()
        .map(|key| {
            let g = &groups[&key];
            let mut t: Vec<f64> = g.iter().map(|m| m.secs).collect();
            let med = median(&mut t);
            Summary {
                workload: key.0,
                phase: key.1,
                peer: key.2,
                n: t.len(),
                min: t.first().copied().unwrap_or(0.0),
                median: med,
                max: t.last().copied().unwrap_or(0.0),
                correct: g.iter().all(|m| m.correct),
            }
        })
        .collect()
}

fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.001 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// The table: a row per workload and phase, a column per peer holding
/// the median, its ratio to the kernel overlay (`overlayfs`), and the
/// spread (min–max as ± of the median).
pub fn table(rows: &[Summary], peers: &[&str]) -> String {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.workload.clone(), r.phase.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let find = |w: &str, ph: &str, p: &str| {
        rows.iter()
            .find(|r| r.workload == w && r.phase == ph && r.peer == p)
    };
    let mut out = String::new();
    out.push_str(&format!("| workload | phase | {} |\n", peers.join(" | ")));
    out.push_str(&format!("|---|---|{}\n", "---|".repeat(peers.len())));
    for (w, ph) in keys {
        let reference = find(&w, &ph, "overlayfs").map(|r| r.median);
        let cells: Vec<String> = peers
            .iter()
            .map(|p| match find(&w, &ph, p) {
                None => "–".to_owned(),
                Some(r) if !r.correct => "WRONG".to_owned(),
                Some(r) => {
                    let ratio = match reference {
                        Some(k) if k > 0.0 => format!(" ({:.2}×)", r.median / k),
                        _ => String::new(),
                    };
                    format!("{}{ratio} ±{:.0}%", fmt_secs(r.median), r.spread() * 50.0)
                }
            })
            .collect();
        out.push_str(&format!("| {w} | {ph} | {} |\n", cells.join(" | ")));
    }
    out
}

/// How a row compares with the same row of a baseline.
#[derive(Debug, PartialEq)]
pub enum Moved {
    Slower(f64),
    Faster(f64),
}

/// Rows that moved beyond the noise both runs measured: the medians
/// differ by more than the larger spread, and the two runs' ranges do not
/// overlap. Anything less is noise on this machine.
pub fn compare(old: &[Summary], new: &[Summary]) -> Vec<(Summary, Moved)> {
    let mut out = Vec::new();
    for n in new {
        let Some(o) = old
            .iter()
            .find(|o| o.peer == n.peer && o.workload == n.workload && o.phase == n.phase)
        else {
            continue;
        };
        if o.median <= 0.0 || n.median <= 0.0 {
            continue;
        }
        let ratio = n.median / o.median;
        let noise = o.spread().max(n.spread());
        if ratio > 1.0 + noise && n.min > o.max {
            out.push((n.clone(), Moved::Slower(ratio)));
        } else if ratio < 1.0 / (1.0 + noise) && n.max < o.min {
            out.push((n.clone(), Moved::Faster(ratio)));
        }
    }
    out
}

/// What machine the figures are from.
#[derive(Debug, Serialize, Deserialize)]
pub struct Machine {
    pub uname: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_bytes: u64,
    pub date: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let uname = std::process::Command::new("uname")
            .arg("-a")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_default();
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|k| k.parse::<u64>().ok())
            })
            .map_or(0, |k| k * 1024);
        let date = std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%dT%H:%M:%SZ")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Machine {
            uname,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_bytes,
            date,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(peer: &str, min: f64, median: f64, max: f64) -> Summary {
        Summary {
            peer: peer.into(),
            workload: "walk".into(),
            phase: "warm".into(),
            n: 5,
            min,
            median,
            max,
            correct: true,
        }
    }

    #[test]
    fn medians_and_rows() {
        let ms: Vec<Measurement> = [3.0, 1.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, s)| Measurement {
                peer: "a".into(),
                workload: "walk".into(),
                phase: "warm".into(),
                round: i,
                secs: *s,
                correct: i != 1,
            })
            .collect();
        let rows = summarize(&ms);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].min, rows[0].median, rows[0].max), (1.0, 2.0, 3.0));
        assert!(!rows[0].correct, "one wrong run makes the row wrong");
        assert!(table(&rows, &["a"]).contains("WRONG"));
    }

    #[test]
    fn only_changes_beyond_the_measured_noise_count() {
        let old = vec![row("ours", 0.9, 1.0, 1.1)];
        // Within the spread: noise.
        assert!(compare(&old, &[row("ours", 1.0, 1.15, 1.3)]).is_empty());
        // Twice as slow, ranges apart: a regression.
        let moved = compare(&old, &[row("ours", 1.9, 2.0, 2.1)]);
        assert!(matches!(moved[0].1, Moved::Slower(r) if (r - 2.0).abs() < 1e-9));
        // A noisy run hides even a large change.
        assert!(compare(&old, &[row("ours", 0.5, 2.0, 4.0)]).is_empty());
        assert!(matches!(
            compare(&old, &[row("ours", 0.4, 0.5, 0.55)])[0].1,
            Moved::Faster(_)
        ));
    }
}
