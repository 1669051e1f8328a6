//! Reading commits and annotated tags from fetched objects.

use crate::pack::{Kind, ObjectId, Objects};

/// At most this many annotated tags on top of one another.
const MAX_TAG_DEPTH: usize = 10;

/// A commit's tree, subject and committer time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Commit {
    pub tree: ObjectId,
    pub subject: String,
    /// Seconds since the Unix epoch from the `committer` line.
    pub committed_at: Option<i64>,
}

/// Peels annotated tags from `id` down to a commit's id.
pub(crate) fn peel_to_commit(objects: &Objects, mut id: ObjectId) -> Option<ObjectId> {
    for _ in 0..=MAX_TAG_DEPTH {
        match objects.get(&id)? {
            (Kind::Commit, _) => return Some(id),
            (Kind::Tag, data) => id = header_id(data, "object ")?,
            _ => return None,
        }
    }
    None
}

/// Reads the commit `id`; `None` when it is missing or malformed.
pub(crate) fn commit(objects: &Objects, id: &ObjectId) -> Option<Commit> {
    let (Kind::Commit, data) = objects.get(id)? else {
        return None;
    };
    let tree = header_id(data, "tree ")?;
    // `git log` re-encodes other encodings to UTF-8; such commits are left to `git`.
    if header(data, "encoding ").is_some_and(|e| !matches!(e, b"UTF-8" | b"utf-8" | b"utf8")) {
        return None;
    }
    let message = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(&[][..], |at| &data[at + 2..]);
    Some(Commit {
        tree,
        subject: subject(&String::from_utf8_lossy(message)),
        committed_at: header(data, "committer ").and_then(signature_time),
    })
}

/// The time of a `Name <email> <seconds> <zone>` signature line.
fn signature_time(signature: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(signature).ok()?;
    text.rsplit(' ').nth(1)?.parse().ok()
}

/// The hex id in the first header line of `data` starting with `field`.
fn header_id(data: &[u8], field: &str) -> Option<ObjectId> {
    parse_hex(header(data, field)?)
}

/// The value of the first header line of `data` starting with `field`.
fn header<'a>(data: &'a [u8], field: &str) -> Option<&'a [u8]> {
    data.split(|b| *b == b'\n')
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(field.as_bytes()))
}

/// A 40-hex-digit object id.
pub(crate) fn parse_hex(hex_id: &[u8]) -> Option<ObjectId> {
    let mut id = [0u8; 20];
    (hex_id.len() == 40
        && hex_id
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then(|| hex::decode_to_slice(hex_id, &mut id).ok())
    .flatten()?;
    Some(id)
}

/// `git log --format=%s`: the first paragraph after leading blank lines, lines joined by spaces.
fn subject(message: &str) -> String {
    message
        .lines()
        .map(str::trim_end)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::object_id;

    #[test]
    fn subjects_like_git_log() {
        assert_eq!(subject("Fix it\n\nBody\n"), "Fix it");
        assert_eq!(subject("\n\nFirst\nsecond  \n\nbody"), "First second");
        assert_eq!(subject(""), "");
    }

    #[test]
    fn reads_commits_through_tags() {
        let tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let commit_data =
            format!("tree {tree}\nauthor a <a> 1 +0000\ncommitter a <a> 1 +0000\n\nHello\n");
        let commit_id = object_id(Kind::Commit, commit_data.as_bytes());
        let tag_data = format!(
            "object {}\ntype commit\ntag v1\n\nmsg\n",
            hex::encode(commit_id)
        );
        let tag_id = object_id(Kind::Tag, tag_data.as_bytes());
        let objects = Objects::from([
            (commit_id, (Kind::Commit, commit_data.into_bytes())),
            (tag_id, (Kind::Tag, tag_data.into_bytes())),
        ]);
        assert_eq!(peel_to_commit(&objects, tag_id), Some(commit_id));
        let read = commit(&objects, &commit_id).unwrap();
        assert_eq!(hex::encode(read.tree), tree);
        assert_eq!(read.subject, "Hello");
        assert_eq!(read.committed_at, Some(1));
        assert_eq!(
            signature_time(b"A B <a@b> 1700000000 +0200"),
            Some(1_700_000_000)
        );
        assert_eq!(commit(&objects, &tag_id), None);
        assert_eq!(parse_hex(b"ABCDEF"), None);
        let latin1 = format!("tree {tree}\nencoding ISO-8859-1\n\nCaf\u{e9}\n");
        let latin1_id = object_id(Kind::Commit, latin1.as_bytes());
        let objects = Objects::from([(latin1_id, (Kind::Commit, latin1.into_bytes()))]);
        assert_eq!(commit(&objects, &latin1_id), None);
    }
}
