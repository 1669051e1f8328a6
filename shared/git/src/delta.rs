//! Git's delta format: the base and result sizes, then copy-from-base and insert instructions.

use crate::pack::PackError;

/// Applies `delta` to `base`; the result may not exceed `max_size` bytes.
pub(crate) fn apply(base: &[u8], delta: &[u8], max_size: usize) -> Result<Vec<u8>, PackError> {
    let (base_size, rest) = size(delta)?;
    let (result_size, mut rest) = size(rest)?;
    if base_size != base.len() as u64 {
        return Err(PackError::Delta("base size mismatch"));
    }
    let result_size = usize::try_from(result_size)
        .ok()
        .filter(|s| *s <= max_size)
        .ok_or(PackError::TooLarge("delta result"))?;
    let mut result = Vec::with_capacity(result_size);
    while let Some((&opcode, tail)) = rest.split_first() {
        rest = tail;
        if opcode & 0x80 != 0 {
            let (offset, length, tail) = copy_operands(opcode, rest)?;
            rest = tail;
            let chunk = offset
                .checked_add(length)
                .and_then(|end| base.get(offset..end))
                .ok_or(PackError::Delta("copy outside the base"))?;
            result.extend_from_slice(chunk);
        } else if opcode != 0 {
            let (chunk, tail) = rest
                .split_at_checked(usize::from(opcode))
                .ok_or(PackError::Delta("truncated insert"))?;
            rest = tail;
            result.extend_from_slice(chunk);
        } else {
            return Err(PackError::Delta("reserved opcode 0"));
        }
        if result.len() > result_size {
            return Err(PackError::Delta("result larger than declared"));
        }
    }
    if result.len() != result_size {
        return Err(PackError::Delta("result size mismatch"));
    }
    Ok(result)
}

/// A delta header size: little-endian groups of 7 bits.
fn size(input: &[u8]) -> Result<(u64, &[u8]), PackError> {
    let mut value = 0u64;
    for (index, byte) in input.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, &input[index + 1..]));
        }
    }
    Err(PackError::Delta("bad size"))
}

/// A copy instruction's offset (bits 0-3 select bytes) and length (bits 4-6; 0 means 64 KiB).
fn copy_operands(opcode: u8, mut input: &[u8]) -> Result<(usize, usize, &[u8]), PackError> {
    let mut read = |bits: std::ops::Range<u8>| -> Result<usize, PackError> {
        let mut value = 0usize;
        for (shift, bit) in bits.enumerate() {
            if opcode & (1 << bit) != 0 {
                let (&byte, tail) = input
                    .split_first()
                    .ok_or(PackError::Delta("truncated copy"))?;
                input = tail;
                value |= usize::from(byte) << (8 * shift);
            }
        }
        Ok(value)
    };
    let offset = read(0..4)?;
    let length = match read(4..7)? {
        0 => 0x10000,
        length => length,
    };
    Ok((offset, length, input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_inserts() {
        let base = b"hello world";
        // base 11, result 11: copy 6 bytes at 0, insert "there".
        let delta = [
            11,
            11,
            0x80 | 0x01 | 0x10,
            0,
            6,
            5,
            b't',
            b'h',
            b'e',
            b'r',
            b'e',
        ];
        assert_eq!(apply(base, &delta, 100).unwrap(), b"hello there");
    }

    #[test]
    fn rejects_malformed_deltas() {
        let base = b"abc";
        assert!(apply(base, &[4, 1, 1, b'x'], 100).is_err());
        assert!(apply(base, &[3, 2, 1, b'x'], 100).is_err());
        assert!(apply(base, &[3, 1, 0], 100).is_err());
        assert!(apply(base, &[3, 4, 0x80 | 0x01 | 0x10, 2, 4], 100).is_err());
        assert!(apply(base, &[3, 200, 1], 100).is_err());
        assert!(apply(base, &[0xff; 12], 100).is_err());
    }
}
