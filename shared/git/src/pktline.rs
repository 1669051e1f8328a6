//! Git's pkt-line framing: a 4-hex-digit length (itself included) then the payload; `0000` is
//! a flush packet.

/// One pkt-line read from a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    Flush,
    Data(&'a [u8]),
}

/// Frames `payload` as one pkt-line.
pub(crate) fn encode(payload: &str) -> String {
    format!("{:04x}{payload}", payload.len() + 4)
}

/// Splits the next pkt-line off `input`; `None` when it is truncated or malformed.
pub(crate) fn next(input: &[u8]) -> Option<(Packet<'_>, &[u8])> {
    let length = std::str::from_utf8(input.get(..4)?).ok()?;
    let length = usize::from_str_radix(length, 16).ok()?;
    match length {
        0 => Some((Packet::Flush, &input[4..])),
        1..=3 => None,
        _ => Some((Packet::Data(input.get(4..length)?), &input[length..])),
    }
}

/// A text payload without its trailing newline.
pub(crate) fn text(payload: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(payload).ok()?;
    Some(line.strip_suffix('\n').unwrap_or(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_splits() {
        assert_eq!(encode("done\n"), "0009done\n");
        let input = b"0009done\n0000rest";
        let (first, rest) = next(input).unwrap();
        assert_eq!(first, Packet::Data(b"done\n"));
        let (second, rest) = next(rest).unwrap();
        assert_eq!(second, Packet::Flush);
        assert_eq!(rest, b"rest");
        assert_eq!(next(b"00"), None);
        assert_eq!(next(b"0002"), None);
        assert_eq!(next(b"0010abc"), None);
        assert_eq!(next(b"zzzz"), None);
    }
}
