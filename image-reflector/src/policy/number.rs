//! Tags read as numbers the way Go's `strconv.ParseFloat(tag, 64)` reads them.

/// Parses a decimal float like Go: optional sign, digits with optional fraction and exponent,
/// `_` only between digits, `inf`/`infinity` (signed) and `nan` (unsigned) in any case.
/// Out-of-range values are rejected as Go does; hexadecimal floats (`0x1p4`) are not supported.
pub fn parse_number(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let negative = text.starts_with('-');
    match unsigned.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => {
            return Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        "nan" if unsigned.len() == text.len() => return Some(f64::NAN),
        _ => {}
    }
    let digits_only = unsigned.bytes().all(|byte| {
        byte.is_ascii_digit() || matches!(byte, b'.' | b'e' | b'E' | b'+' | b'-' | b'_')
    });
    if !digits_only || !underscores_between_digits(unsigned) {
        return None;
    }
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let value: f64 = cleaned.parse().ok()?;
    value.is_finite().then_some(value)
}

/// Every `_` has an ASCII digit on both sides.
fn underscores_between_digits(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(index, &byte)| {
        byte != b'_'
            || index > 0
                && bytes[index - 1].is_ascii_digit()
                && bytes.get(index + 1).is_some_and(u8::is_ascii_digit)
    })
}
