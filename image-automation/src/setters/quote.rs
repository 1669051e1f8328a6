//! Writes a replacement value in the style of the scalar it replaces.

use super::scan::Style;
use super::yaml11;

/// `value` written as a scalar of `style`; a plain scalar becomes double-quoted only when the
/// value cannot be written plain or would not read as a string in YAML 1.1 (as Flux quotes it).
/// `None` for block scalars, which [`super::block`] writes.
pub fn render(value: &str, style: Style, in_flow: bool) -> Option<String> {
    match style {
        Style::Plain if plain_safe(value, in_flow) && !yaml11::is_non_string(value) => {
            Some(value.to_owned())
        }
        Style::Plain | Style::DoubleQuoted => Some(double_quoted(value)),
        Style::SingleQuoted if !value.contains(['\n', '\r']) => {
            Some(format!("'{}'", value.replace('\'', "''")))
        }
        Style::SingleQuoted => Some(double_quoted(value)),
        Style::Block => None,
    }
}

/// Whether `value` reads back unchanged as a plain scalar (conservatively).
fn plain_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let indicator = "-?:,[]{}#&*!|>'\"%@`".contains(first);
    let flow_breaking = in_flow && value.contains([',', '[', ']', '{', '}']);
    !indicator
        && !flow_breaking
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.ends_with(':')
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
        && !value.chars().any(char::is_control)
}

pub fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_are_kept() {
        let image = "ghcr.io/org/app:1.2.3@sha256:ab";
        assert_eq!(render(image, Style::Plain, false).unwrap(), image);
        assert_eq!(render(image, Style::Plain, true).unwrap(), image);
        assert_eq!(
            render("it's", Style::SingleQuoted, false).unwrap(),
            "'it''s'"
        );
        assert_eq!(
            render("a\"b\\", Style::DoubleQuoted, false).unwrap(),
            r#""a\"b\\""#
        );
        assert_eq!(render("a: b", Style::Plain, false).unwrap(), r#""a: b""#);
        assert_eq!(render("*x", Style::Plain, false).unwrap(), r#""*x""#);
        assert_eq!(render("a,b", Style::Plain, true).unwrap(), r#""a,b""#);
        assert_eq!(render("", Style::Plain, false).unwrap(), r#""""#);
        assert_eq!(render("x", Style::Block, false), None);
        assert_eq!(render("123", Style::Plain, false).unwrap(), r#""123""#);
        assert_eq!(render("1.0", Style::SingleQuoted, false).unwrap(), "'1.0'");
    }
}
