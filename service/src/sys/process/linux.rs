//! Linux: `/proc` for process facts, a pidfd to notice a process's exit.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use super::ProcInfo;

/// The command name of process `pid` (`/proc/PID/comm`).
pub fn name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// Reads `/proc/<pid>`; `None` if there is no such process (or thread).
pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let meta = fs::metadata(format!("/proc/{pid}")).ok()?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); ppid is field 4, starttime field 22.
    let ppid = fields.get(1)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        uid: meta.uid(),
        start_time,
    })
}

/// True while process `pid` exists and has not exited (a zombie has).
pub fn is_running(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the command name's ')'.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// The process (thread group) a thread id belongs to. FUSE requests carry
/// the calling thread's id on Linux.
pub fn thread_group(tid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// True if thread `tid` still belongs to process `tgid`.
pub fn thread_in_group(tgid: u32, tid: u32) -> bool {
    tgid == tid || fs::symlink_metadata(format!("/proc/{tgid}/task/{tid}")).is_ok()
}

/// Notices the exit of one specific process, even if its pid is reused.
#[derive(Debug)]
pub struct ProcessWatch {
    pidfd: OwnedFd,
}

impl ProcessWatch {
    /// Watches process `pid` and reads its facts; `None` if it is gone.
    ///
    /// The pidfd is opened first and checked alive after `/proc` is read,
    /// so the facts belong to the watched process even if the pid is
    /// recycled meanwhile (start times tick only every 10 ms on Linux and
    /// cannot tell two processes apart).
    pub fn open(pid: u32) -> Option<(Self, ProcInfo)> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return None;
        }
        let watch = Self {
            // SAFETY: the syscall returned a fresh fd that nothing else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        };
        let info = proc_info(pid)?;
        watch.alive().then_some((watch, info))
    }

    /// True until the process exits.
    pub fn alive(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        // A pidfd becomes readable when the process exits.
        !(n > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
    }
}

/// The value of `name` in the environment process `pid` started with.
pub fn environ_var(pid: u32, name: &str) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    find_var(&env, name)
}

pub(super) fn find_var(block: &[u8], name: &str) -> Option<String> {
    block.split(|b| *b == 0).find_map(|kv| {
        let kv = std::str::from_utf8(kv).ok()?;
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Every process id on the machine.
pub fn all_pids() -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The mount namespace of process `pid` (the target of
/// `/proc/PID/ns/mnt`, as upstream spfs records and compares it).
pub fn mount_namespace(pid: u32) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

/// When the machine last booted (`btime` in /proc/stat).
pub fn boot_time() -> Option<std::time::SystemTime> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}
