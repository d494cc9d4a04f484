//! A small, safe FlatBuffers reader for the spfs object schema.
//!
//! Written by hand instead of using generated code so that decoding needs no
//! `unsafe` and every offset is bounds-checked: a truncated or hostile object
//! file yields an error, never a panic or an out-of-bounds read.

use super::super::digest::{Digest, DIGEST_SIZE};

/// Decoding failure with a short reason.
pub(super) type FbResult<T> = std::result::Result<T, String>;

fn bad(what: &str, pos: usize) -> String {
    format!("flatbuffer {what} at byte {pos} is out of bounds")
}

/// Offset in a vtable of the slot of field `id` (the writer's too).
pub(super) const fn slot(id: u16) -> u16 {
    4 + 2 * id
}

/// A view over a flatbuffer's bytes.
#[derive(Clone, Copy)]
pub(super) struct Buf<'a>(pub &'a [u8]);

impl<'a> Buf<'a> {
    fn bytes(&self, pos: usize, len: usize, what: &str) -> FbResult<&'a [u8]> {
        pos.checked_add(len)
            .and_then(|end| self.0.get(pos..end))
            .ok_or_else(|| bad(what, pos))
    }
    fn array<const N: usize>(&self, pos: usize, what: &str) -> FbResult<[u8; N]> {
        self.bytes(pos, N, what)?
            .try_into()
            .map_err(|_| bad(what, pos))
    }
    fn u8(&self, pos: usize) -> FbResult<u8> {
        self.array(pos, "u8").map(u8::from_le_bytes)
    }
    fn u16(&self, pos: usize) -> FbResult<u16> {
        self.array(pos, "u16").map(u16::from_le_bytes)
    }
    fn u32(&self, pos: usize) -> FbResult<u32> {
        self.array(pos, "u32").map(u32::from_le_bytes)
    }
    fn u64(&self, pos: usize) -> FbResult<u64> {
        self.array(pos, "u64").map(u64::from_le_bytes)
    }
    /// Follows a forward offset stored at `pos`.
    fn follow(&self, pos: usize) -> FbResult<usize> {
        let off = self.u32(pos)? as usize;
        let target = pos.checked_add(off).ok_or_else(|| bad("offset", pos))?;
        if target >= self.0.len() {
            return Err(bad("offset target", pos));
        }
        Ok(target)
    }

    /// The root table of a finished buffer (no size prefix, no identifier).
    pub(super) fn root(&self) -> FbResult<Table<'a>> {
        let pos = self.follow(0)?;
        Table::at(*self, pos)
    }
}

/// One table inside a buffer, with its vtable resolved.
#[derive(Clone, Copy)]
pub(super) struct Table<'a> {
    buf: Buf<'a>,
    pos: usize,
    vtable: usize,
    vtable_len: usize,
}

impl<'a> Table<'a> {
    fn at(buf: Buf<'a>, pos: usize) -> FbResult<Self> {
        let soffset = buf.u32(pos)? as i32 as i64;
        let vtable = (pos as i64)
            .checked_sub(soffset)
            .filter(|v| *v >= 0)
            .ok_or_else(|| bad("vtable", pos))? as usize;
        let vtable_len = buf.u16(vtable)? as usize;
        if vtable_len < 4 || vtable_len % 2 != 0 {
            return Err(format!(
                "flatbuffer vtable at byte {vtable} has bad length {vtable_len}"
            ));
        }
        buf.bytes(vtable, vtable_len, "vtable")?;
        let table_len = buf.u16(vtable + 2)? as usize;
        buf.bytes(pos, table_len, "table")?;
        Ok(Self {
            buf,
            pos,
            vtable,
            vtable_len,
        })
    }

    /// Position of field `id` in the buffer, if the field is present.
    fn field(&self, id: u16) -> FbResult<Option<usize>> {
        let slot = usize::from(slot(id));
        if slot + 2 > self.vtable_len {
            return Ok(None);
        }
        let off = self.buf.u16(self.vtable + slot)? as usize;
        Ok((off != 0).then_some(self.pos + off))
    }

    /// A u8 scalar (enum and union-type fields).
    pub(super) fn u8(&self, id: u16, default: u8) -> FbResult<u8> {
        self.field(id)?.map_or(Ok(default), |p| self.buf.u8(p))
    }
    /// A u32 scalar.
    pub(super) fn u32(&self, id: u16, default: u32) -> FbResult<u32> {
        self.field(id)?.map_or(Ok(default), |p| self.buf.u32(p))
    }
    /// A u64 scalar.
    pub(super) fn u64(&self, id: u16, default: u64) -> FbResult<u64> {
        self.field(id)?.map_or(Ok(default), |p| self.buf.u64(p))
    }
    /// An inline `Digest` struct.
    pub(super) fn digest(&self, id: u16) -> FbResult<Option<Digest>> {
        match self.field(id)? {
            None => Ok(None),
            Some(p) => Ok(Digest::from_slice(self.buf.bytes(
                p,
                DIGEST_SIZE,
                "digest",
            )?)),
        }
    }
    /// A sub-table.
    pub(super) fn table(&self, id: u16) -> FbResult<Option<Table<'a>>> {
        match self.field(id)? {
            None => Ok(None),
            Some(p) => Table::at(self.buf, self.buf.follow(p)?).map(Some),
        }
    }
    /// A string (must be UTF-8, as the FlatBuffers spec requires).
    pub(super) fn str(&self, id: u16) -> FbResult<Option<&'a str>> {
        match self.vector_raw(id, 1)? {
            None => Ok(None),
            Some((start, len)) => {
                let bytes = self.buf.bytes(start, len, "string")?;
                std::str::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| format!("flatbuffer string at byte {start} is not UTF-8"))
            }
        }
    }
    /// A vector of tables.
    pub(super) fn tables(&self, id: u16) -> FbResult<Option<Tables<'a>>> {
        Ok(self.vector_raw(id, 4)?.map(|(start, len)| Tables {
            buf: self.buf,
            start,
            len,
        }))
    }
    /// A vector of `Digest` structs.
    pub(super) fn digests(&self, id: u16) -> FbResult<Option<Vec<Digest>>> {
        let Some((start, len)) = self.vector_raw(id, DIGEST_SIZE)? else {
            return Ok(None);
        };
        let bytes = self.buf.bytes(start, len * DIGEST_SIZE, "digest vector")?;
        Ok(Some(
            bytes
                .chunks_exact(DIGEST_SIZE)
                .filter_map(Digest::from_slice)
                .collect(),
        ))
    }

    /// (first element position, element count) of a vector field, with the
    /// whole element range checked against the buffer.
    fn vector_raw(&self, id: u16, elem_size: usize) -> FbResult<Option<(usize, usize)>> {
        let Some(p) = self.field(id)? else {
            return Ok(None);
        };
        let vpos = self.buf.follow(p)?;
        let len = self.buf.u32(vpos)? as usize;
        let start = vpos + 4;
        let total = len
            .checked_mul(elem_size)
            .ok_or_else(|| bad("vector length", vpos))?;
        self.buf.bytes(start, total, "vector")?;
        Ok(Some((start, len)))
    }
}

/// A vector of tables, read lazily.
#[derive(Clone, Copy)]
pub(super) struct Tables<'a> {
    buf: Buf<'a>,
    start: usize,
    len: usize,
}

impl<'a> Tables<'a> {
    /// Number of tables.
    pub(super) fn len(&self) -> usize {
        self.len
    }
    /// True if there are none.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The `i`th table.
    pub(super) fn get(&self, i: usize) -> FbResult<Table<'a>> {
        let slot = self.start + 4 * i;
        Table::at(self.buf, self.buf.follow(slot)?)
    }
}

/// Names a required field that was absent.
pub(super) fn required<T>(value: Option<T>, table: &str, field: &str) -> FbResult<T> {
    value.ok_or_else(|| format!("{table}.{field} is required but missing"))
}
