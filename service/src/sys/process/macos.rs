//! macOS: `proc_pidinfo` for process facts; liveness by start time.

use super::ProcInfo;

fn bsdinfo(pid: u32) -> Option<libc::proc_bsdinfo> {
    // SAFETY: proc_bsdinfo is plain data; zeroed is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: the buffer is a proc_bsdinfo of exactly `size` bytes.
    let n = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (n == size).then_some(info)
}

/// The command name of process `pid` (its BSD info's `pbi_comm`).
pub fn name(pid: u32) -> Option<String> {
    let info = bsdinfo(pid)?;
    let bytes: Vec<u8> = info
        .pbi_comm
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads the process's BSD info; `None` if there is no such process.
pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let info = bsdinfo(pid)?;
    Some(ProcInfo {
        pid,
        ppid: info.pbi_ppid,
        uid: info.pbi_uid,
        start_time: info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec,
    })
}

/// True while process `pid` exists and has not exited (a zombie has).
pub fn is_running(pid: u32) -> bool {
    // SZOMB from <sys/proc.h>.
    const SZOMB: u32 = 5;
    bsdinfo(pid).is_some_and(|i| i.pbi_status != SZOMB)
}

/// FUSE requests on macOS carry the process id already.
pub fn thread_group(tid: u32) -> Option<u32> {
    Some(tid)
}

/// Threads are not visible to FUSE on macOS.
pub fn thread_in_group(_tgid: u32, _tid: u32) -> bool {
    true
}

/// Notices the exit of one specific process by its start time.
#[derive(Debug)]
pub struct ProcessWatch {
    pid: u32,
    start_time: u64,
}

impl ProcessWatch {
    /// Watches process `pid` and reads its facts; `None` if it is gone.
    /// Start times have microsecond resolution here, enough to tell a
    /// process from a later one with the same pid.
    pub fn open(pid: u32) -> Option<(Self, ProcInfo)> {
        let info = proc_info(pid)?;
        Some((
            Self {
                pid,
                start_time: info.start_time,
            },
            info,
        ))
    }

    /// True until the process exits (a new process with the pid differs in
    /// start time).
    pub fn alive(&self) -> bool {
        proc_info(self.pid).is_some_and(|p| p.start_time == self.start_time)
    }
}

/// The value of `name` in the environment process `pid` started with
/// (readable for processes of the same user, or by root).
pub fn environ_var(pid: u32, name: &str) -> Option<String> {
    let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid as libc::c_int];
    let mut size: libc::size_t = 0;
    // SAFETY: querying the size with a null buffer.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            std::ptr::null_mut(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 || size == 0 {
        return None;
    }
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` is `size` bytes long, as sysctl is told.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            buf.as_mut_ptr().cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    buf.truncate(size);
    // Layout: argc (i32), exec path, NULs, argv[argc], then the environment.
    let argc = i32::from_ne_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let mut parts = buf[4..].split(|b| *b == 0).filter(|p| !p.is_empty());
    parts.next()?; // exec path
    for _ in 0..argc {
        parts.next()?;
    }
    parts.find_map(|kv| {
        let kv = std::str::from_utf8(kv).ok()?;
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Every process id on the machine.
pub fn all_pids() -> Vec<u32> {
    // SAFETY: a null buffer asks for the number of pids.
    let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    if n <= 0 {
        return Vec::new();
    }
    let mut pids = vec![0 as libc::pid_t; n as usize + 64];
    let bytes = (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int;
    // SAFETY: the buffer holds `bytes` bytes.
    let n = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
    pids.truncate(n.max(0) as usize);
    pids.into_iter()
        .filter(|p| *p > 0)
        .map(|p| p as u32)
        .collect()
}

/// The mount namespace of process `pid`: macOS has none.
pub fn mount_namespace(_pid: u32) -> Option<std::path::PathBuf> {
    None
}

/// When the machine last booted (`kern.boottime`).
pub fn boot_time() -> Option<std::time::SystemTime> {
    let mut mib = [libc::CTL_KERN, libc::KERN_BOOTTIME];
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut size = std::mem::size_of::<libc::timeval>() as libc::size_t;
    // SAFETY: `tv` is a timeval of `size` bytes, as sysctl is told.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            2,
            (&mut tv as *mut libc::timeval).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 || tv.tv_sec <= 0 {
        return None;
    }
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(tv.tv_sec as u64))
}
