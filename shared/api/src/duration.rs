//! Flux duration strings such as `1m30s`, `500ms` or `1.5h`.
//!
//! Flux stores intervals and timeouts as Go `metav1.Duration` strings restricted by a CRD pattern.
//! [`parse_duration`] accepts exactly that pattern; [`format_duration`] prints Go's canonical form.

use std::fmt;
use std::time::Duration;

/// CRD pattern for `spec.interval` and `spec.retryInterval`.
pub const INTERVAL_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// CRD pattern for source `spec.timeout` (no hour unit).
pub const TIMEOUT_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// Largest duration Go can represent (`math.MaxInt64` nanoseconds).
const MAX_NANOS: u128 = i64::MAX as u128;

const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SECOND: u128 = 1_000_000_000;
const NANOS_PER_MINUTE: u128 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: u128 = 60 * NANOS_PER_MINUTE;

const NANOS_PER_UNIT: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", NANOS_PER_MILLI),
    ("s", NANOS_PER_SECOND),
    ("m", NANOS_PER_MINUTE),
    ("h", NANOS_PER_HOUR),
];

/// A string that does not match [`INTERVAL_PATTERN`] or overflows Go's duration range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl DurationError {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            input: input.to_owned(),
            reason,
        }
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {} (expected e.g. \"1m30s\", \"500ms\", \"1.5h\")",
            self.input, self.reason
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses a Flux spec duration: one or more `<number>[.<fraction>]<unit>` terms with units
/// `ms`, `s`, `m`, `h`, exactly what [`INTERVAL_PATTERN`] admits.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    if input.is_empty() {
        return Err(DurationError::new(input, "empty string"));
    }
    let mut rest = input.as_bytes();
    while !rest.is_empty() {
        let integer = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if integer == 0 {
            return Err(DurationError::new(input, "expected a number"));
        }
        rest = &rest[integer..];
        if let Some(after_dot) = rest.strip_prefix(b".") {
            let fraction = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
            if fraction == 0 {
                return Err(DurationError::new(input, "expected digits after '.'"));
            }
            rest = &after_dot[fraction..];
        }
        rest = match rest {
            [b'm', b's', tail @ ..] | [b's' | b'm' | b'h', tail @ ..] => tail,
            [] => return Err(DurationError::new(input, "missing unit")),
            _ => {
                return Err(DurationError::new(
                    input,
                    "unknown unit (use ms, s, m or h)",
                ));
            }
        };
    }
    parse_go_duration(input)
}

/// Parses a Go `time.ParseDuration` string (units ns, us, µs, ms, s, m, h), as Flux's
/// command-line flags accept; negative durations are rejected.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError::new(input, reason);
    let mut rest = input.strip_prefix('+').unwrap_or(input);
    if rest.starts_with('-') && rest != "-0" {
        return Err(fail("negative durations are not allowed"));
    }
    if rest == "0" || rest == "-0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(fail("empty string"));
    }
    let mut total: u128 = 0;
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
            return Err(fail("missing unit"));
        }
        let unit_nanos = NANOS_PER_UNIT
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, nanos)| *nanos)
            .ok_or_else(|| fail("unknown unit (use ns, us, ms, s, m or h)"))?;
        total = number_to_nanos(number, unit_nanos)
            .and_then(|term| total.checked_add(term))
            .filter(|sum| *sum <= MAX_NANOS)
            .ok_or_else(|| fail("out of range"))?;
        rest = after_unit;
    }
    let nanos = u64::try_from(total).map_err(|_| fail("out of range"))?;
    Ok(Duration::from_nanos(nanos))
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
    (nanos <= MAX_NANOS).then_some(nanos)
}

/// Formats a duration the way Go's `time.Duration.String` does, e.g. `1m30s`, `1h0m0s`, `500ms`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < NANOS_PER_MILLI {
        return format!("{}µs", decimal(nanos, 1_000));
    }
    if nanos < NANOS_PER_SECOND {
        return format!("{}ms", decimal(nanos, NANOS_PER_MILLI));
    }
    let hours = nanos / NANOS_PER_HOUR;
    let minutes = nanos % NANOS_PER_HOUR / NANOS_PER_MINUTE;
    let seconds = decimal(nanos % NANOS_PER_MINUTE, NANOS_PER_SECOND);
    match (hours, nanos >= NANOS_PER_MINUTE) {
        (0, false) => format!("{seconds}s"),
        (0, true) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// `value / unit` as a decimal number without trailing zeros.
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
    use proptest::prelude::*;

    #[test]
    fn parses_flux_examples() {
        let cases = [
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1h", Duration::from_secs(3600)),
            ("1.5h", Duration::from_secs(5400)),
            ("0.5s", Duration::from_millis(500)),
            ("10m", Duration::from_secs(600)),
            ("1h0m0s", Duration::from_secs(3600)),
            ("2m1ms", Duration::from_millis(120_001)),
            ("0s", Duration::ZERO),
            ("1.000000001s", Duration::new(1, 1)),
            ("1.0000000019s", Duration::new(1, 1)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_strings_outside_the_crd_pattern() {
        for input in [
            "", "1", "m", "1x", "1.s", ".5s", "-1s", "+1s", "1 s", "1us", "1ns", "1µs", "1d",
            "1s ", "1hh", "1.5.5s",
        ] {
            assert!(
                parse_duration(input).is_err(),
                "{input:?} should be rejected"
            );
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_duration("2562047h47m16.854775807s").is_ok());
        assert!(parse_duration("2562047h47m16.854775808s").is_err());
        assert!(parse_duration("99999999999999999999999999999999999999999h").is_err());
    }

    #[test]
    fn error_message_names_the_input() {
        let message = parse_duration("5minutes").unwrap_err().to_string();
        assert!(message.contains("\"5minutes\""), "{message}");
    }

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
            assert_eq!(parse_go_duration(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn go_durations_reject_malformed_input() {
        for input in ["", "5", "s", "1x", "-5s", "1..5s", "5s3", "1d", "."] {
            let error = parse_go_duration(input).expect_err(input);
            assert!(error.to_string().contains(input), "{error}");
        }
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(5), "5ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::new(3723, 4_000_000), "1h2m3.004s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format_duration(duration), expected);
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(nanos in 1_000_000u64..=i64::MAX as u64) {
            let duration = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }

        #[test]
        fn accepts_every_pattern_match(terms in proptest::collection::vec(
            (0u32..100_000, proptest::option::of(0u32..1000), prop_oneof!["ms", "s", "m", "h"]),
            1..4,
        )) {
            let input: String = terms
                .iter()
                .map(|(whole, fraction, unit)| match fraction {
                    Some(fraction) => format!("{whole}.{fraction}{unit}"),
                    None => format!("{whole}{unit}"),
                })
                .collect();
            prop_assert!(parse_duration(&input).is_ok(), "{}", input);
        }
    }
}
