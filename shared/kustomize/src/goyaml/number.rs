//! Numbers as Flux's pipeline prints them: Go's `json.Marshal`, read back by go-yaml v2, printed
//! with `strconv.FormatFloat(f, 'g', -1, 64)` when the text is not an integer.

use serde_json::Number;

/// The YAML text of a JSON number.
pub(super) fn number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    // Go's JSON encoder prints integral floats below 1e21 as shortest digits padded with zeros,
    // which go-yaml reads back as an integer when it fits 64 bits.
    if f.fract() == 0.0 && f.abs() < 1e21 {
        let (negative, digits, exponent) = shortest(f);
        let zeros = "0".repeat(
            usize::try_from(exponent + 1)
                .unwrap_or(0)
                .saturating_sub(digits.len()),
        );
        let text = format!("{}{digits}{zeros}", if negative { "-" } else { "" });
        if let Ok(i) = text.parse::<i64>() {
            return i.to_string();
        }
        if let Ok(u) = text.parse::<u64>() {
            return u.to_string();
        }
    }
    format_g(f)
}

/// Go's shortest round-trip digits of `f` (ties to even), with the decimal exponent of the first.
fn shortest(f: f64) -> (bool, String, i32) {
    // Rust's shortest digits round a tie up, Go's to even: redo that many digits in exact mode.
    let first = format!("{f:e}");
    let mantissa = first.split_once('e').map_or(first.as_str(), |(m, _)| m);
    let count = mantissa.chars().filter(char::is_ascii_digit).count();
    let scientific = format!("{f:.*e}", count.saturating_sub(1));
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.trim_end_matches('0') {
        "" => "0".to_string(),
        trimmed => trimmed.to_string(),
    };
    (
        mantissa.starts_with('-'),
        digits,
        exponent.parse().unwrap_or(0),
    )
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent form below 1e-4 or from 1e6.
fn format_g(f: f64) -> String {
    let (negative, digits, exponent) = shortest(f);
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}{rest}e{exp_sign}{:02}", exponent.abs());
    }
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let point = exponent as usize + 1;
    if digits.len() <= point {
        format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn format_g_matches_go_for_known_values() {
        for (f, text) in [
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1e-5, "1e-05"),
            (1234567.5, "1.2345675e+06"),
            (123456.5, "123456.5"),
            (0.0001, "0.0001"),
            (-2.5e-300, "-2.5e-300"),
            (-1114285714285714.2, "-1.1142857142857142e+15"),
        ] {
            assert_eq!(format_g(f), text, "{f}");
        }
    }
}
