//! Payloads served only when they hash to their digest.
//!
//! A payload file replaced by another of the same size (a damaged disk, a
//! careless edit, a tampered repository) passes the size check that every
//! open makes. So each payload *file* is hashed when it is first opened
//! and the verdict kept, keyed by what changes when the file does —
//! device, inode, size, modification and change times: an unchanged file
//! is never hashed again, and a swapped or rewritten one always is.
//!
//! Small payloads ([`INLINE_MAX`]) are hashed before their open completes.
//! A large one is served while a background thread hashes it (the reader
//! and the hash share the file's pages, so a first read costs what it
//! did); its handle carries the [`PayloadCheck`], and once the file is
//! found wrong every read that reaches the service fails, and so does
//! every later open. Callers that cannot carry the check (a copy-up, an
//! editable runtime's read of a layer's file) ask for the verdict first
//! ([`PayloadVerifier::admit`] with `now`). The cost is measured by
//! `scripts/bench` (cold `seq_read` and `read_small`; docs/benchmarks.md).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// Payloads up to this size are hashed before their open completes (at
/// most a millisecond or so); larger ones in the background.
pub const INLINE_MAX: u64 = 1 << 20;
/// Background hashing threads at most; started on demand, they end when
/// there is nothing left to hash.
const THREADS: usize = 2;
/// Verdicts kept at most; past it they are forgotten (and files hashed
/// again when next opened).
const MAX_KNOWN: usize = 1 << 20;

const PENDING: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;
/// The background hash could not read the file: no verdict (whoever
/// needs one hashes it again).
const UNREAD: u8 = 3;

/// The verdict on one payload file, shared by its open handles.
#[derive(Debug)]
pub struct PayloadCheck {
    state: AtomicU8,
    /// The digest it is judged against.
    digest: Digest,
}

impl PayloadCheck {
    /// True once the file was found not to hash to its digest (reads
    /// fail from then on).
    pub fn is_bad(&self) -> bool {
        self.state.load(Ordering::Acquire) == BAD
    }
}

/// What identifies a file's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A large payload waiting to be hashed.
struct Job {
    file: File,
    key: FileKey,
    check: Arc<PayloadCheck>,
}

#[derive(Default)]
struct State {
    known: HashMap<FileKey, Arc<PayloadCheck>>,
    queue: VecDeque<Job>,
    threads: usize,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken when a background verdict is reached.
    settled: Condvar,
}

/// Verdicts on payload files, shared by every repository set of a
/// process (the service makes one).
#[derive(Default)]
pub struct PayloadVerifier {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PayloadVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.state.lock();
        f.debug_struct("PayloadVerifier")
            .field("known", &s.known.len())
            .field("queued", &s.queue.len())
            .finish()
    }
}

/// What [`PayloadVerifier::admit`] decided.
#[derive(Debug)]
pub enum Admitted {
    /// It hashes to its digest.
    Good,
    /// Served while it is hashed in the background: the reader consults
    /// the check.
    Pending(Arc<PayloadCheck>),
    /// It does not hash to its digest.
    Bad,
}

impl PayloadVerifier {
    /// A verifier that knows nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges open payload `file` as `digest`: a known file at once, a
    /// small one by hashing it now, a large one in the background
    /// (`Pending`) — or now too, with `now` (waiting for a background
    /// hash already under way rather than hashing twice).
    pub fn admit(&self, digest: &Digest, file: &File, now: bool) -> std::io::Result<Admitted> {
        let key = FileKey::of(&file.metadata()?);
        let mut s = self.shared.state.lock();
        let check = match s.known.get(&key) {
            // (A file judged as another digest is judged again.)
            Some(c) if c.digest == *digest => c.clone(),
            _ => {
                if s.known.len() >= MAX_KNOWN {
                    s.known
                        .retain(|_, c| c.state.load(Ordering::Acquire) == PENDING);
                }
                let c = Arc::new(PayloadCheck {
                    state: AtomicU8::new(PENDING),
                    digest: *digest,
                });
                s.known.insert(key, c.clone());
                if key.size <= INLINE_MAX || now {
                    drop(s);
                    return self.hash_now(file, key, &c);
                }
                s.queue.push_back(Job {
                    file: file.try_clone()?,
                    key,
                    check: c.clone(),
                });
                if s.threads < THREADS {
                    s.threads += 1;
                    drop(s);
                    self.start_thread();
                }
                return Ok(Admitted::Pending(c));
            }
        };
        loop {
            match check.state.load(Ordering::Acquire) {
                GOOD => return Ok(Admitted::Good),
                BAD => return Ok(Admitted::Bad),
                UNREAD => {
                    // (Its entry is gone: this makes a new one.)
                    drop(s);
                    return self.admit(digest, file, now);
                }
                _ if !now => return Ok(Admitted::Pending(check)),
                // Hashed by a background thread now: wait for it.
                _ => self.shared.settled.wait(&mut s),
            }
        }
    }

    fn hash_now(
        &self,
        file: &File,
        key: FileKey,
        check: &PayloadCheck,
    ) -> std::io::Result<Admitted> {
        match hash_file(file, key.size) {
            Ok(found) => {
                let good = settle(&self.shared, check, found, key);
                Ok(if good { Admitted::Good } else { Admitted::Bad })
            }
            Err(e) => {
                // Unread is not wrong: the next open tries again.
                unread(&self.shared, key, check);
                Err(e)
            }
        }
    }

    fn start_thread(&self) {
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name("payload-verify".into())
            .spawn(move || loop {
                let job = {
                    let mut s = shared.state.lock();
                    match s.queue.pop_front() {
                        Some(j) => j,
                        None => {
                            s.threads -= 1;
                            return;
                        }
                    }
                };
                match hash_file(&job.file, job.key.size) {
                    Ok(found) => {
                        settle(&shared, &job.check, found, job.key);
                    }
                    Err(e) => {
                        tracing::warn!(payload = %job.check.digest, error = %e, "cannot read a payload to verify it; it is verified when next opened");
                        unread(&shared, job.key, &job.check);
                    }
                }
            });
        if started.is_err() {
            // No thread: what is queued is judged when next opened.
            let queued: Vec<Job> = {
                let mut s = self.shared.state.lock();
                s.threads -= 1;
                s.queue.drain(..).collect()
            };
            for job in queued {
                unread(&self.shared, job.key, &job.check);
            }
        }
    }
}

/// Gives up on judging a payload file for now (it could not be read):
/// its entry goes, and whoever waits for it hashes it again.
fn unread(shared: &Shared, key: FileKey, check: &PayloadCheck) {
    {
        let mut s = shared.state.lock();
        if s.known.get(&key).is_some_and(|c| std::ptr::eq(&**c, check)) {
            s.known.remove(&key);
        }
        check.state.store(UNREAD, Ordering::Release);
    }
    shared.settled.notify_all();
}

/// Records the verdict on a payload file (saying so when it is wrong) and
/// wakes whoever waits for it; true if it is right.
fn settle(shared: &Shared, check: &PayloadCheck, found: Digest, key: FileKey) -> bool {
    let good = found == check.digest;
    {
        let _s = shared.state.lock();
        check
            .state
            .store(if good { GOOD } else { BAD }, Ordering::Release);
    }
    shared.settled.notify_all();
    if !good {
        tracing::error!(payload = %check.digest, found = %found, inode = key.ino, "a payload does not hash to its digest: its file was replaced or damaged, and is not served");
    }
    good
}

/// The digest of the first `size` bytes of `file`, read by offset (the
/// file's own position is not moved).
fn hash_file(file: &File, size: u64) -> std::io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; usize::try_from(size.clamp(1, 256 * 1024)).unwrap_or(1)];
    let mut at = 0u64;
    while at < size {
        let want = buf
            .len()
            .min(usize::try_from(size - at).unwrap_or(usize::MAX));
        let n = file.read_at(buf.get_mut(..want).unwrap_or_default(), at)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        at += n as u64;
    }
    Ok(Digest::from_bytes(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(dir: &std::path::Path, name: &str, bytes: &[u8]) -> (Digest, File) {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        (Digest::of(bytes), File::open(&p).unwrap())
    }

    fn wait(c: &PayloadCheck) {
        for _ in 0..1000 {
            if c.state.load(Ordering::Acquire) != PENDING {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("no verdict");
    }

    #[test]
    fn small_payloads_are_judged_at_once_and_once_per_file() {
        let d = tempfile::tempdir().unwrap();
        let v = PayloadVerifier::new();
        let (good, f) = payload(d.path(), "a", b"hello");
        assert!(matches!(v.admit(&good, &f, false).unwrap(), Admitted::Good));
        assert!(matches!(v.admit(&good, &f, false).unwrap(), Admitted::Good));
        assert_eq!(v.shared.state.lock().known.len(), 1, "judged once");
        // Same size, other bytes, under the same digest: refused.
        let (_, swapped) = payload(d.path(), "b", b"jello");
        assert!(matches!(
            v.admit(&good, &swapped, false).unwrap(),
            Admitted::Bad
        ));
        // Rewritten in place (new times): judged again.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(d.path().join("a"), b"hellx").unwrap();
        let f = File::open(d.path().join("a")).unwrap();
        assert!(matches!(v.admit(&good, &f, false).unwrap(), Admitted::Bad));
        let (empty, f) = payload(d.path(), "empty", b"");
        assert!(matches!(
            v.admit(&empty, &f, false).unwrap(),
            Admitted::Good
        ));
    }

    #[test]
    fn large_payloads_are_judged_in_the_background_or_now_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let v = PayloadVerifier::new();
        let big = vec![7u8; (INLINE_MAX * 3 + 5) as usize];
        let (good, f) = payload(d.path(), "big", &big);
        match v.admit(&good, &f, false).unwrap() {
            Admitted::Pending(c) => {
                wait(&c);
                assert!(!c.is_bad());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(v.admit(&good, &f, false).unwrap(), Admitted::Good));
        let mut other = big.clone();
        other[12345] = 8;
        let (_, swapped) = payload(d.path(), "swapped", &other);
        match v.admit(&good, &swapped, false).unwrap() {
            Admitted::Pending(c) => {
                wait(&c);
                assert!(c.is_bad());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            v.admit(&good, &swapped, false).unwrap(),
            Admitted::Bad
        ));
        // Asked for the verdict now (a copy-up): no Pending.
        let (_, again) = payload(d.path(), "again", &other);
        assert!(matches!(
            v.admit(&good, &again, true).unwrap(),
            Admitted::Bad
        ));
        // Now, while a background hash of the same file runs: waits for it.
        let (good2, f2) = payload(d.path(), "big2", &vec![9u8; (INLINE_MAX * 2) as usize]);
        assert!(matches!(
            v.admit(&good2, &f2, false).unwrap(),
            Admitted::Pending(_)
        ));
        assert!(matches!(
            v.admit(&good2, &f2, true).unwrap(),
            Admitted::Good
        ));
    }
}
