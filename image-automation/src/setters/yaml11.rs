//! Whether a value written plain would read back as something other than a string in YAML 1.1
//! (Kubernetes' and kyaml's reader): Flux double-quotes such values (kyaml's
//! `FormatNonStringStyle`), so a tag `123`, `1.0`, `yes` or `2024-01-15` stays a string.

/// Words YAML 1.1 reads as booleans, null or special floats.
const WORDS: &[&str] = &[
    "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true",
    "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".nan",
    ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
];

/// Whether plain `value` reads as a bool, null, number or timestamp in YAML 1.1.
pub fn is_non_string(value: &str) -> bool {
    if value.is_empty() || value.contains('\n') {
        return false;
    }
    if WORDS.contains(&value) {
        return true;
    }
    match value.as_bytes()[0] {
        b'.' => is_float(value),
        b'+' | b'-' | b'0'..=b'9' => {
            let digits = value.replace('_', "");
            is_timestamp(value)
                || is_integer(&digits)
                || (is_yaml_float(&digits) && is_float(&digits))
        }
        _ => false,
    }
}

/// A finite float, as Go's `strconv.ParseFloat` accepts it without a range error.
fn is_float(text: &str) -> bool {
    let lowered = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    !lowered.starts_with("inf")
        && !lowered.starts_with("nan")
        && text.parse::<f64>().is_ok_and(f64::is_finite)
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, YAML 1.1's float form.
fn is_yaml_float(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => all_digits(fraction),
        Some((whole, fraction)) => {
            all_digits(whole) && fraction.bytes().all(|b| b.is_ascii_digit())
        }
        None => all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| all_digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// An integer as Go's `strconv.ParseInt(text, 0, 64)` or `ParseUint` reads it (`0x`, `0o`, `0b`
/// and leading-`0` octal prefixes).
fn is_integer(text: &str) -> bool {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return false;
    }
    let Ok(magnitude) = u128::from_str_radix(digits, radix) else {
        return false;
    };
    let signed_fits = if negative {
        magnitude <= 1 << 63
    } else {
        magnitude < 1 << 63
    };
    let unsigned_fits = text == unsigned && magnitude <= u128::from(u64::MAX);
    signed_fits || unsigned_fits
}

/// A timestamp in one of Go yaml.v2's layouts: `2006-1-2`, `2006-1-2 15:4:5[.frac]` or
/// `2006-1-2T15:4:5[.frac](Z|±07:00)` (`T` or `t`).
fn is_timestamp(text: &str) -> bool {
    let Some(rest) = parse_date(text) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let (zoned, time) = match rest.as_bytes()[0] {
        b'T' | b't' => (true, &rest[1..]),
        b' ' => (false, &rest[1..]),
        _ => return false,
    };
    let Some(rest) = parse_time(time) else {
        return false;
    };
    if !zoned {
        return rest.is_empty();
    }
    rest == "Z" || is_zone_offset(rest)
}

/// `YYYY-M-D` with a valid day of the month; what follows.
fn parse_date(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    if bytes.len() < 8 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    let year: u32 = text[..4].parse().ok()?;
    let (month, rest) = number(&text[5..], 2)?;
    let rest = rest.strip_prefix('-')?;
    let (day, rest) = number(rest, 2)?;
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    (1..=days).contains(&day).then_some(rest)
}

/// `H:M:S[.digits]` with hour < 24 and minute, second < 60; what follows.
fn parse_time(text: &str) -> Option<&str> {
    let (hour, rest) = number(text, 2)?;
    let (minute, rest) = number(rest.strip_prefix(':')?, 2)?;
    let (second, rest) = number(rest.strip_prefix(':')?, 2)?;
    if hour >= 24 || minute >= 60 || second >= 60 {
        return None;
    }
    let fraction = rest
        .strip_prefix(['.', ','])
        .filter(|f| f.starts_with(|c: char| c.is_ascii_digit()));
    Some(match fraction {
        Some(digits) => digits.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    })
}

/// `±hh:mm`.
fn is_zone_offset(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 6
        && matches!(bytes[0], b'+' | b'-')
        && bytes[3] == b':'
        && [1, 2, 4, 5].iter().all(|&i| bytes[i].is_ascii_digit())
        && text[1..3].parse::<u32>().is_ok_and(|h| h <= 24)
        && text[4..6].parse::<u32>().is_ok_and(|m| m <= 60)
}

/// One to `max` leading decimal digits and what follows them.
fn number(text: &str, max: usize) -> Option<(u32, &str)> {
    let len = text
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    (len > 0).then(|| (text[..len].parse().unwrap_or(u32::MAX), &text[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values and whether Flux (kyaml `IsValueNonString` with go.yaml.in/yaml/v2 v2.4.4) quotes
    /// them: checked with kyaml v0.21.2 writing each as a marked plain scalar.
    #[test]
    fn as_kyaml_decides() {
        let quoted = [
            "123",
            "1.0",
            "08",
            "0x1F",
            "yes",
            "on",
            "y",
            "Null",
            "NULL",
            "~",
            "2024-01-01",
            "1_000",
            ".5",
            "+1",
            "0b101",
            "0o17",
            "-0b11",
            "1.",
            "9223372036854775808",
            "18446744073709551616",
            ".inf",
            "-.inf",
            ".nan",
            "2024-1-5 10:30:00",
            "2024-01-15T10:30:00.5Z",
            "2024-01-15t10:30:00+02:00",
            "2024-02-29",
            "2024-1-5 1:2:3",
            "2024-01-15 10:30:00.123",
            "2024-01-15T10:30:00,5Z",
            "0",
            "-0",
            "+0x10",
            "0_1",
            "1__0",
            "12e3",
            "1.5E-3",
            ".5e1",
        ];
        let plain = [
            "1e400",
            "0xFFFFFFFFFFFFFFFFFF",
            "v1.0",
            "1.2.3",
            "1:20",
            "nULL",
            "",
            "2024-02-30",
            "2024-01-15T10:30:00",
            "2024-01-15-abc",
            "latest",
            "sha256:ab",
            "inf",
            "+nan",
            "2023-02-29",
            "2024-01-15T24:00:00Z",
            "2024-01-15T10:30:00+25:00",
            "._5",
            "0.0.1",
        ];
        for value in quoted {
            assert!(is_non_string(value), "{value} should be quoted");
        }
        for value in plain {
            assert!(!is_non_string(value), "{value} should stay plain");
        }
    }
}
