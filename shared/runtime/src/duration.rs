//! Go-style duration strings ("30s", "1m30s", "750ms", "1.5h"), as used by Flux flags and specs.

use std::time::Duration;

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {problem}; use a sequence of numbers with units ns, us, ms, s, m or h, e.g. \"1m30s\""
)]
pub struct DurationError {
    input: String,
    problem: &'static str,
}

const NANOS_PER_UNIT: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go `time.ParseDuration` string; negative durations are rejected.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |problem| DurationError {
        input: input.to_owned(),
        problem,
    };
    let mut rest = input.strip_prefix('+').unwrap_or(input);
    if rest.starts_with('-') && rest != "-0" {
        return Err(fail("negative durations are not allowed"));
    }
    if rest == "0" || rest == "-0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(fail("it is empty"));
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after_number) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(fail("expected a number"));
        }
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            return Err(fail("a number is missing its unit"));
        }
        let unit_nanos = NANOS_PER_UNIT
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, nanos)| *nanos)
            .ok_or_else(|| fail("unknown unit"))?;
        total_nanos = total_nanos
            .checked_add(
                number_to_nanos(number, unit_nanos).ok_or_else(|| fail("it is too large"))?,
            )
            .ok_or_else(|| fail("it is too large"))?;
        rest = after_unit;
    }
    let seconds =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| fail("it is too large"))?;
    let nanos = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| fail("it is too large"))?;
    Ok(Duration::new(seconds, nanos))
}

/// Converts "12.5" in a unit of `unit_nanos` to nanoseconds; fractions below 1ns are dropped.
fn number_to_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    let mut scale = unit_nanos;
    for digit in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(digit - b'0') * scale)?;
    }
    Some(nanos)
}

/// Formats a duration like Go's `Duration.String` ("1m30s", "750ms", "1h0m0s", "0s").
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = decimal(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// `value / unit` as a decimal without trailing zeros ("1.5", "750").
fn decimal(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let remainder = value % unit;
    if remainder == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let fraction = format!("{remainder:0width$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        let cases = [
            ("0", Duration::ZERO),
            ("30s", Duration::from_secs(30)),
            ("1m30s", Duration::from_secs(90)),
            ("750ms", Duration::from_millis(750)),
            ("15m", Duration::from_secs(900)),
            ("1h", Duration::from_secs(3600)),
            ("1.5h", Duration::from_secs(5400)),
            ("2h45m0.5s", Duration::from_millis(9_900_500)),
            ("300us", Duration::from_micros(300)),
            ("300µs", Duration::from_micros(300)),
            ("10ns", Duration::from_nanos(10)),
            (".5s", Duration::from_millis(500)),
            ("+5s", Duration::from_secs(5)),
            ("-0", Duration::ZERO),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_malformed_durations() {
        for input in ["", "5", "s", "1x", "-5s", "1..5s", "5s3", "1d", "."] {
            let error = parse_duration(input).expect_err(input);
            assert!(error.to_string().contains(input), "{error}");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(10), "10ns"),
            (Duration::from_micros(300), "300µs"),
            (Duration::from_millis(750), "750ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(9_900_500), "2h45m0.5s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format_duration(duration), expected);
            assert_eq!(parse_duration(expected), Ok(duration));
        }
    }
}
