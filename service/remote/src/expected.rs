//! A payload arriving from a remote is read as what its manifest says it
//! is: never more bytes than its size (a server that sends an endless
//! stream stages nothing past it), and at no less than a floor rate over
//! the whole transfer (a server that keeps talking, a byte at a time,
//! still runs into the timeout).

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// The slowest transfer accepted, after the remote timeout's grace:
/// 64 KiB/s (a 1 GiB payload may take 4.5 hours; a 20-byte one, the
/// timeout).
const FLOOR_BYTES_PER_SEC: u64 = 64 * 1024;

/// Reads `inner`, a payload of `size` bytes from `remote`.
pub(crate) struct Expected<R> {
    inner: R,
    size: u64,
    read: u64,
    deadline: Instant,
    remote: String,
}

impl<R> Expected<R> {
    /// `inner` carries a payload of `size` bytes; the whole of it must
    /// arrive within `limit` plus its size at the floor rate.
    pub(crate) fn new(inner: R, size: u64, limit: Duration, remote: &str) -> Self {
        let transfer = Duration::from_secs(size / FLOOR_BYTES_PER_SEC);
        Expected {
            inner,
            size,
            read: 0,
            deadline: Instant::now() + limit + transfer,
            remote: remote.to_owned(),
        }
    }
}

impl<R: Read> Read for Expected<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() > self.deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} sent {} of {} bytes too slowly (below {} KiB/s): the download was stopped",
                    self.remote,
                    self.read,
                    self.size,
                    FLOOR_BYTES_PER_SEC / 1024
                ),
            ));
        }
        // One byte past the size is enough to know there are too many.
        let left = self.size.saturating_sub(self.read).saturating_add(1);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.read += n as u64;
        if self.read > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} sent more than the {} bytes the payload has: refused, nothing stored",
                    self.remote, self.size
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_bytes_pass_and_one_more_is_refused() {
        let mut ok = Expected::new(&b"hello"[..], 5, Duration::from_secs(30), "r");
        let mut v = Vec::new();
        ok.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"hello");
        let endless = io::repeat(b'x');
        let mut long = Expected::new(endless, 20, Duration::from_secs(30), "remote 'o'");
        let mut v = Vec::new();
        let e = long.read_to_end(&mut v).unwrap_err();
        assert!(e.to_string().contains("more than the 20 bytes"), "{e}");
        assert!(v.len() <= 21, "read {} bytes", v.len());
    }

    #[test]
    fn a_transfer_past_its_deadline_is_stopped() {
        let mut slow = Expected::new(io::repeat(b'x'), 10, Duration::ZERO, "r");
        std::thread::sleep(Duration::from_millis(5));
        let e = slow.read(&mut [0; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("too slowly"), "{e}");
    }
}
