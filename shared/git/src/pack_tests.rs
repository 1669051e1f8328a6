use std::io::Write;

use proptest::prelude::*;

use super::*;

/// An object header: type in bits 4-6 of the first byte, size in 4 then 7-bit groups.
fn header(kind: u8, mut size: usize) -> Vec<u8> {
    let mut bytes = vec![(kind << 4) | (size & 0x0f) as u8];
    size >>= 4;
    while size > 0 {
        *bytes.last_mut().unwrap() |= 0x80;
        bytes.push((size & 0x7f) as u8);
        size >>= 7;
    }
    bytes
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A pack of `(type, prefix, data)` entries, the prefix holding a delta's base reference.
fn pack(entries: &[(u8, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = b"PACK".to_vec();
    bytes.extend(2u32.to_be_bytes());
    bytes.extend((entries.len() as u32).to_be_bytes());
    for (kind, prefix, data) in entries {
        bytes.extend(header(*kind, data.len()));
        bytes.extend(prefix);
        bytes.extend(deflate(data));
    }
    let checksum = Sha1::digest(&bytes);
    bytes.extend(checksum);
    bytes
}

/// A delta turning `base` into `base` + `suffix`.
fn append_delta(base: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut delta = vec![base.len() as u8, (base.len() + suffix.len()) as u8];
    delta.extend([0x80 | 0x10, base.len() as u8]);
    delta.push(suffix.len() as u8);
    delta.extend(suffix);
    delta
}

#[test]
fn reads_full_and_delta_objects() {
    let base = b"apiVersion: v1\nkind: ConfigMap\n".to_vec();
    let ofs = append_delta(&base, b"a: 1\n");
    let with_a = [base.clone(), b"a: 1\n".to_vec()].concat();
    let ref_delta = append_delta(&with_a, b"b: 2\n");
    let base_id = object_id(Kind::Blob, &base);
    let with_a_id = object_id(Kind::Blob, &with_a);
    // The OFS_DELTA's base starts right after the 12-byte header.
    let base_entry_len = header(3, base.len()).len() + deflate(&base).len();
    let bytes = pack(&[
        (3, vec![], base.clone()),
        (6, vec![base_entry_len as u8], ofs),
        (7, with_a_id.to_vec(), ref_delta),
    ]);
    let objects = read(&bytes).unwrap();
    assert_eq!(objects.len(), 3);
    assert_eq!(objects[&base_id].1, base);
    assert_eq!(objects[&with_a_id].1, with_a);
    let full = [with_a, b"b: 2\n".to_vec()].concat();
    assert_eq!(objects[&object_id(Kind::Blob, &full)].0, Kind::Blob);
}

#[test]
fn ref_delta_before_its_base() {
    let base = b"hello".to_vec();
    let delta = append_delta(&base, b" world");
    let base_id = object_id(Kind::Blob, &base);
    let bytes = pack(&[(7, base_id.to_vec(), delta), (3, vec![], base)]);
    assert_eq!(read(&bytes).unwrap().len(), 2);
}

#[test]
fn rejects_bad_packs() {
    let good = pack(&[(3, vec![], b"x".to_vec())]);
    let mut bad_checksum = good.clone();
    *bad_checksum.last_mut().unwrap() ^= 1;
    assert!(matches!(read(&bad_checksum), Err(PackError::Checksum)));
    let missing_base = pack(&[(7, [7u8; 20].to_vec(), append_delta(b"a", b"b"))]);
    assert!(read(&missing_base).is_err());
    let wrong_size = {
        let mut bytes = b"PACK".to_vec();
        bytes.extend(2u32.to_be_bytes());
        bytes.extend(1u32.to_be_bytes());
        bytes.extend(header(3, 5));
        bytes.extend(deflate(b"abc"));
        let checksum = Sha1::digest(&bytes);
        bytes.extend(checksum);
        bytes
    };
    assert!(read(&wrong_size).is_err());
    assert!(read(b"PACK").is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read(&bytes);
    }

    #[test]
    fn mutated_packs_never_panic(index in 0usize..4096, value in any::<u8>(), cut in 0usize..4096) {
        let base = b"some text that repeats, some text that repeats".to_vec();
        let delta = append_delta(&base, b" and more");
        let base_entry_len = header(3, base.len()).len() + deflate(&base).len();
        let mut bytes = pack(&[(3, vec![], base), (6, vec![base_entry_len as u8], delta)]);
        let index = index % bytes.len();
        bytes[index] = value;
        // Recompute the checksum so the mutation reaches the object parser.
        let body_len = bytes.len() - 20;
        let checksum = Sha1::digest(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&checksum);
        let _ = read(&bytes);
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = read(&bytes);
    }
}
