//! Which plain strings go-yaml v2 would read back as something other than a string (so they are
//! quoted): booleans and nulls of YAML 1.1, integers, floats, timestamps and base-60 floats.

/// Whether `s` written plain reads back as the same string.
pub(super) fn plain_is_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    let Some(first) = s.bytes().next() else {
        return false;
    };
    if !matches!(first, b'+' | b'-' | b'0'..=b'9' | b'.' | b'~') && !b"yYnNtTfFoO".contains(&first)
    {
        return true;
    }
    if WORDS.contains(&s) {
        return false;
    }
    match first {
        b'.' => !decimal_float(s),
        b'+' | b'-' | b'0'..=b'9' => !(timestamp(s) || number(s) || base60_float(s)),
        _ => true,
    }
}

/// An int (any Go base prefix), uint or YAML-style float once underscores are dropped.
fn number(s: &str) -> bool {
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    go_int(&plain) || (yaml_style_float(&plain) && finite(&plain))
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` succeeds.
fn go_int(s: &str) -> bool {
    let (sign, unsigned) = match s.as_bytes().first() {
        Some(b'-' | b'+') => (s.as_bytes()[0], &s[1..]),
        _ => (0, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if lower.len() >= 3 && lower.starts_with("0x") {
        (16, &unsigned[2..])
    } else if lower.len() >= 3 && lower.starts_with("0b") {
        (2, &unsigned[2..])
    } else if lower.len() >= 3 && lower.starts_with("0o") {
        (8, &unsigned[2..])
    } else if let Some(rest) = unsigned.strip_prefix('0') {
        (8, rest)
    } else {
        (10, unsigned)
    };
    if unsigned.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return false;
    }
    let value = if digits.is_empty() {
        Some(0)
    } else {
        u64::from_str_radix(digits, radix).ok()
    };
    match value {
        None => false,
        // ParseUint, tried when ParseInt overflows, takes no sign.
        Some(v) if sign == b'-' => v <= 1 << 63,
        Some(v) if sign == b'+' => v < 1 << 63,
        Some(_) => true,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)))
}

/// Go's `ParseFloat` of a decimal starting with `.`: digits, optional exponent, underscores only
/// between digits, and no overflow.
fn decimal_float(s: &str) -> bool {
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    let (mantissa, exponent) = match plain.find(['e', 'E']) {
        Some(at) => (&plain[..at], Some(&plain[at + 1..])),
        None => (plain.as_str(), None),
    };
    let fraction = &mantissa[1..];
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(fraction)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)))
        && underscores_between_digits(s)
        && finite(&plain)
}

/// Go's `underscoreOK`: every `_` has a digit on both sides.
fn underscores_between_digits(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().all(|(i, b)| {
        *b != b'_'
            || (i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    })
}

fn finite(s: &str) -> bool {
    s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`, quoted for YAML 1.1 readers.
fn base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (body, fraction) = match s.split_once('.') {
        Some((body, fraction)) => (body, Some(fraction)),
        None => (s, None),
    };
    let mut parts = body.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let sexagesimal = |p: &str| match p.as_bytes() {
        [d] => d.is_ascii_digit(),
        [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
        _ => false,
    };
    let rest: Vec<&str> = parts.collect();
    head_ok
        && !rest.is_empty()
        && rest.iter().all(|p| sexagesimal(p))
        && fraction.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
}

/// go-yaml v2's timestamps: `2006-1-2`, `2006-1-2 15:4:5.999999999` and RFC 3339 with short fields.
fn timestamp(s: &str) -> bool {
    let Some((date, time)) = parse_date(s) else {
        return false;
    };
    if time.is_empty() {
        return date;
    }
    let Some((separator, rest)) = time.split_at_checked(1) else {
        return false;
    };
    let zoned = separator == "T" || separator == "t";
    if !date || !(zoned || separator == " ") {
        return false;
    }
    let Some(rest) = parse_clock(rest) else {
        return false;
    };
    if !zoned {
        return rest.is_empty();
    }
    zone(rest)
}

/// `2006-1-2`: whether the date is valid, and what follows it.
fn parse_date(s: &str) -> Option<(bool, &str)> {
    let year: i64 = s.get(..4)?.parse().ok()?;
    if !s[..4].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = s[4..].strip_prefix('-')?;
    let (month, rest) = short_number(rest)?;
    let rest = rest.strip_prefix('-')?;
    let (day, rest) = short_number(rest)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    Some(((1..=12).contains(&month) && (1..=days).contains(&day), rest))
}

/// `15:4:5` with optional fractional seconds; what follows.
fn parse_clock(s: &str) -> Option<&str> {
    let (hour, rest) = short_number(s)?;
    let (minute, rest) = short_number(rest.strip_prefix(':')?)?;
    let (second, mut rest) = short_number(rest.strip_prefix(':')?)?;
    if hour >= 24 || minute >= 60 || second >= 60 {
        return None;
    }
    if rest.len() >= 2
        && (rest.starts_with('.') || rest.starts_with(','))
        && rest.as_bytes()[1].is_ascii_digit()
    {
        let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
        rest = &rest[1 + digits..];
    }
    Some(rest)
}

/// `Z07:00`: `Z` or `±hh:mm` ending the text.
fn zone(s: &str) -> bool {
    if s == "Z" {
        return true;
    }
    let b = s.as_bytes();
    b.len() == 6
        && (b[0] == b'+' || b[0] == b'-')
        && b[3] == b':'
        && [1, 2, 4, 5].iter().all(|i| b[*i].is_ascii_digit())
        && (b[1] - b'0') * 10 + (b[2] - b'0') <= 24
        && (b[4] - b'0') * 10 + (b[5] - b'0') <= 60
}

/// One or two digits, as Go's time layouts `1`, `2`, `15`, `4` and `5` read them.
fn short_number(s: &str) -> Option<(u32, &str)> {
    let b = s.as_bytes();
    match b {
        [d, e, ..] if d.is_ascii_digit() && e.is_ascii_digit() => {
            Some((u32::from((d - b'0') * 10 + (e - b'0')), &s[2..]))
        }
        [d, ..] if d.is_ascii_digit() => Some((u32::from(d - b'0'), &s[1..])),
        _ => None,
    }
}
