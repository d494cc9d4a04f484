//! Content digests: 32 bytes of SHA-256, shown as RFC 4648 base32 text.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32;
use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};

/// Number of bytes in a digest.
pub const DIGEST_SIZE: usize = 32;
/// Length of a digest's text form (always ends in `====`).
pub const DIGEST_TEXT_LEN: usize = 56;

/// A SHA-256 digest identifying an object or a payload.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; DIGEST_SIZE]);

impl Digest {
    /// 32 zero bytes: the object of a mask entry, the parent of a first tag.
    pub const NULL: Digest = Digest([0; DIGEST_SIZE]);

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; DIGEST_SIZE]) -> Self {
        Self(bytes)
    }

    /// Reads a digest from the first 32 bytes of `bytes`, if there are that many.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.get(..DIGEST_SIZE).map(|b| {
            let mut out = [0; DIGEST_SIZE];
            out.copy_from_slice(b);
            Self(out)
        })
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; DIGEST_SIZE] {
        &self.0
    }

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// SHA-256 of everything `reader` yields, and how many bytes that was.
    pub fn of_reader(mut reader: impl std::io::Read) -> std::io::Result<(Self, u64)> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(buf.get(..n).unwrap_or_default());
            size += n as u64;
        }
        Ok((Self(hasher.finalize().into()), size))
    }

    /// The digest of no bytes at all (an empty file's payload).
    pub fn empty() -> Self {
        Self::of(b"")
    }

    /// Parses the 56-character base32 text form.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidDigest {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.len() != DIGEST_TEXT_LEN {
            return Err(invalid("expected 56 base32 characters ending in '===='"));
        }
        let bytes = BASE32
            .decode(text.as_bytes())
            .map_err(|_| invalid("not upper-case base32 (A-Z, 2-7) with '=' padding"))?;
        Digest::from_slice(&bytes)
            .filter(|_| bytes.len() == DIGEST_SIZE)
            .ok_or_else(|| invalid("does not decode to 32 bytes"))
    }

    /// The text split the way fs repositories shard it: (`"XX"`, rest).
    pub fn shard(&self) -> (String, String) {
        let mut text = self.to_string();
        let rest = text.split_off(2);
        (text, rest)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32.encode(&self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// A prefix of a digest's text form, as users type them (`7MYHTB`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PartialDigest(String);

impl PartialDigest {
    /// Accepts 1 to 55 characters of upper-case base32 (no padding).
    pub fn parse(text: &str) -> Result<Self> {
        let ok = !text.is_empty()
            && text.len() < DIGEST_TEXT_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::InvalidDigest {
                text: text.to_owned(),
                reason: "a partial digest is 1 to 55 upper-case base32 characters (A-Z, 2-7)"
                    .to_owned(),
            })
        }
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `digest`'s text starts with this prefix.
    pub fn matches(&self, digest: &Digest) -> bool {
        digest.to_string().starts_with(&self.0)
    }
}

impl fmt::Display for PartialDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_sharding() {
        let d = Digest::of(b"hello");
        let text = d.to_string();
        assert_eq!(text.len(), DIGEST_TEXT_LEN);
        assert!(text.ends_with("===="));
        assert_eq!(Digest::parse(&text).unwrap(), d);
        let (shard, rest) = d.shard();
        assert_eq!(format!("{shard}{rest}"), text);
        assert_eq!(shard.len(), 2);
    }

    #[test]
    fn null_and_empty() {
        assert_eq!(Digest::NULL.to_string(), format!("{}====", "A".repeat(52)));
        assert_eq!(
            Digest::empty().to_string(),
            "4OYMIQUY7QOBJGX36TEJS35ZEQT24QPEMSNZGTFESWMRW6CSXBKQ===="
        );
    }

    #[test]
    fn bad_text_is_a_clear_error() {
        for bad in [
            "",
            "abc",
            "7myhtbatahcqxh3nbuaeb2df6msfqsgxkfwmqxed47je5ttoiga====",
            "7MYHTBATAHCQXH3NEUEAB2DF6MSFQSGXKFWMQXED47JE5TTOIGA===",
            "7MYHTBATAHCQXH3NEUEAB2DF6MSFQSGXKFWMQXED47JE5TTOIGA1====",
            "Ü".repeat(28).as_str(),
        ] {
            let err = Digest::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid digest"), "{err}");
        }
    }

    #[test]
    fn partial_digests() {
        let d = Digest::of(b"x");
        let text = d.to_string();
        let p = PartialDigest::parse(&text[..6]).unwrap();
        assert!(p.matches(&d));
        assert!(PartialDigest::parse("abc").is_err());
        assert!(PartialDigest::parse("").is_err());
        assert!(PartialDigest::parse("A1").is_err());
        assert!(PartialDigest::parse(&text).is_err());
    }
}
