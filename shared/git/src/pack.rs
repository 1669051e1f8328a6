//! Reading an untrusted packfile: objects inflated, deltas resolved within the pack, each
//! object and the trailing checksum verified by SHA-1, all within fixed bounds.

use std::collections::HashMap;

use flate2::{Decompress, FlushDecompress, Status};
use sha1::{Digest, Sha1};

use crate::delta;

/// At most this many objects in a pack.
const MAX_OBJECTS: u32 = 500_000;
/// At most this many bytes in one object, inflated.
const MAX_OBJECT_SIZE: usize = 64 << 20;
/// At most this many bytes inflated across the pack (held in memory until the tree is written);
/// a larger checkout is left to `git`.
const MAX_INFLATED: usize = 128 << 20;
/// At most this many deltas on top of a full object.
const MAX_DELTA_DEPTH: u32 = 1000;

/// A SHA-1 object id.
pub(crate) type ObjectId = [u8; 20];

/// Why a pack was not read; the fetch then falls back to the `git` CLI.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PackError {
    #[error("truncated or malformed pack: {0}")]
    Malformed(&'static str),
    #[error("corrupt zlib stream in pack")]
    Inflate,
    #[error("invalid delta: {0}")]
    Delta(&'static str),
    #[error("{0} exceeds the in-process limits")]
    TooLarge(&'static str),
    #[error("pack checksum mismatch")]
    Checksum,
}

/// The kinds of full objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Tree => "tree",
            Self::Blob => "blob",
            Self::Tag => "tag",
        }
    }
}

/// One object of a pack, as stored: full, or a delta against an earlier offset or an id.
enum Entry {
    Full(Kind, Vec<u8>),
    OffsetDelta(usize, Vec<u8>),
    RefDelta(ObjectId, Vec<u8>),
}

/// The objects of a pack by id.
pub(crate) type Objects = HashMap<ObjectId, (Kind, Vec<u8>)>;

/// Reads every object of `pack`, verifying its checksum.
pub(crate) fn read(pack: &[u8]) -> Result<Objects, PackError> {
    let (body, checksum) = pack
        .split_at_checked(pack.len().saturating_sub(20))
        .filter(|(body, _)| body.len() >= 12)
        .ok_or(PackError::Malformed("too short"))?;
    if Sha1::digest(body).as_slice() != checksum {
        return Err(PackError::Checksum);
    }
    let version = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    if &body[..4] != b"PACK" || !(version == 2 || version == 3) {
        return Err(PackError::Malformed("bad header"));
    }
    let count = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
    if count > MAX_OBJECTS {
        return Err(PackError::TooLarge("object count"));
    }
    let mut entries = Vec::new();
    let mut position = 12;
    let mut budget = MAX_INFLATED;
    for _ in 0..count {
        let (entry, next) = entry_at(body, position, &mut budget)?;
        entries.push((position, entry));
        position = next;
    }
    if position != body.len() {
        return Err(PackError::Malformed("trailing bytes"));
    }
    resolve(entries, budget)
}

/// The entry at `start` and where the next begins; inflated bytes are taken from `budget`.
fn entry_at(body: &[u8], start: usize, budget: &mut usize) -> Result<(Entry, usize), PackError> {
    let truncated = || PackError::Malformed("truncated object header");
    let mut position = start;
    let mut byte = *body
        .get(position)
        .ok_or(PackError::Malformed("missing object"))?;
    position += 1;
    let kind = (byte >> 4) & 0x07;
    let mut size = u64::from(byte & 0x0f);
    let mut shift = 4;
    while byte & 0x80 != 0 {
        byte = *body
            .get(position)
            .ok_or(PackError::Malformed("truncated size"))?;
        position += 1;
        if shift > 60 {
            return Err(PackError::Malformed("size too long"));
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_OBJECT_SIZE && *s <= *budget)
        .ok_or(PackError::TooLarge("object size"))?;
    *budget -= size;
    let base = match kind {
        6 => {
            let (distance, next) = offset_distance(body, position).ok_or_else(truncated)?;
            position = next;
            Some(
                start
                    .checked_sub(distance)
                    .ok_or(PackError::Malformed("bad offset"))?,
            )
        }
        _ => None,
    };
    let base_id = match kind {
        7 => {
            let id: ObjectId = body
                .get(position..position + 20)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(truncated)?;
            position += 20;
            Some(id)
        }
        _ => None,
    };
    let (data, next) = inflate(body, position, size)?;
    let entry = match (kind, base, base_id) {
        (1, ..) => Entry::Full(Kind::Commit, data),
        (2, ..) => Entry::Full(Kind::Tree, data),
        (3, ..) => Entry::Full(Kind::Blob, data),
        (4, ..) => Entry::Full(Kind::Tag, data),
        (6, Some(base), _) => Entry::OffsetDelta(base, data),
        (7, _, Some(id)) => Entry::RefDelta(id, data),
        _ => return Err(PackError::Malformed("unknown object type")),
    };
    Ok((entry, next))
}

/// An OFS_DELTA's distance back to its base: big-endian 7-bit groups, each continuation +1.
fn offset_distance(body: &[u8], mut position: usize) -> Option<(usize, usize)> {
    let mut byte = *body.get(position)?;
    position += 1;
    let mut distance = usize::from(byte & 0x7f);
    while byte & 0x80 != 0 {
        byte = *body.get(position)?;
        position += 1;
        distance = distance.checked_add(1)?.checked_mul(128)? | usize::from(byte & 0x7f);
    }
    Some((distance, position))
}

/// Inflates the zlib stream at `start`, which must give exactly `size` bytes.
fn inflate(body: &[u8], start: usize, size: usize) -> Result<(Vec<u8>, usize), PackError> {
    let mut inflater = Decompress::new(true);
    let mut data = Vec::with_capacity(size.min(1 << 16) + 1);
    loop {
        let consumed = usize::try_from(inflater.total_in()).map_err(|_| PackError::Inflate)?;
        let input = body.get(start + consumed..).ok_or(PackError::Inflate)?;
        if data.len() == data.capacity() {
            data.reserve((size + 1 - data.len()).min(data.len().max(1 << 16)));
        }
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_vec(input, &mut data, FlushDecompress::None)
            .map_err(|_| PackError::Inflate)?;
        if data.len() > size {
            return Err(PackError::Malformed("object larger than declared"));
        }
        if status == Status::StreamEnd {
            break;
        }
        if before == (inflater.total_in(), inflater.total_out()) {
            return Err(PackError::Inflate);
        }
    }
    if data.len() != size {
        return Err(PackError::Malformed("object smaller than declared"));
    }
    let consumed = usize::try_from(inflater.total_in()).map_err(|_| PackError::Inflate)?;
    Ok((data, start + consumed))
}

/// Resolves deltas (to bases anywhere in the pack) and indexes every object by its id.
fn resolve(entries: Vec<(usize, Entry)>, mut budget: usize) -> Result<Objects, PackError> {
    let mut objects = Objects::with_capacity(entries.len());
    // Per resolved object: its id and delta depth, by pack offset.
    let mut by_offset: HashMap<usize, (ObjectId, u32)> = HashMap::new();
    let mut depths: HashMap<ObjectId, u32> = HashMap::new();
    let mut pending = Vec::new();
    for (offset, entry) in entries {
        match entry {
            Entry::Full(kind, data) => {
                let id = insert(&mut objects, kind, data);
                by_offset.insert(offset, (id, 0));
                depths.insert(id, 0);
            }
            delta => pending.push((offset, delta)),
        }
    }
    while !pending.is_empty() {
        let waiting = pending.len();
        let mut still = Vec::new();
        for (offset, entry) in pending {
            let (base, data) = match &entry {
                Entry::OffsetDelta(base, data) => (by_offset.get(base).map(|b| b.0), data),
                Entry::RefDelta(id, data) => (depths.contains_key(id).then_some(*id), data),
                Entry::Full(..) => return Err(PackError::Malformed("unexpected full object")),
            };
            let Some(base) = base else {
                still.push((offset, entry));
                continue;
            };
            let depth = depths.get(&base).copied().unwrap_or_default() + 1;
            if depth > MAX_DELTA_DEPTH {
                return Err(PackError::TooLarge("delta chain"));
            }
            let (kind, base_data) = objects.get(&base).ok_or(PackError::Delta("missing base"))?;
            let kind = *kind;
            let result = delta::apply(base_data, data, MAX_OBJECT_SIZE.min(budget))?;
            budget -= result.len();
            let id = insert(&mut objects, kind, result);
            by_offset.insert(offset, (id, depth));
            depths.entry(id).or_insert(depth);
        }
        if still.len() == waiting {
            return Err(PackError::Delta("base not in the pack"));
        }
        pending = still;
    }
    Ok(objects)
}

fn insert(objects: &mut Objects, kind: Kind, data: Vec<u8>) -> ObjectId {
    let id = object_id(kind, &data);
    objects.insert(id, (kind, data));
    id
}

/// Git's object id: SHA-1 over `<kind> <size>\0` and the contents.
pub(crate) fn object_id(kind: Kind, data: &[u8]) -> ObjectId {
    let mut hasher = Sha1::new();
    hasher.update(format!("{} {}\0", kind.name(), data.len()));
    hasher.update(data);
    hasher.finalize().into()
}

#[cfg(test)]
#[path = "pack_tests.rs"]
mod tests;
