//! The scalar style go-yaml v2 picks for a string: plain, single-quoted, double-quoted or literal.

use super::resolve::plain_is_string;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// What the emitter's scalar analysis allows for a value.
struct Allowed {
    plain: bool,
    single: bool,
    block: bool,
}

/// A line break as YAML counts them: LF, CR, NEL, LS and PS.
pub(super) fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The characters the emitter writes unescaped (any other is escaped in double quotes).
pub(super) fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        && c != '\u{FEFF}'
}

/// The style of a string value; `simple_key` for a mapping key written on one line.
pub(super) fn string_style(s: &str, simple_key: bool) -> Style {
    let allowed = analyze(s);
    let requested = if s.contains('\n') {
        Style::Literal
    } else if plain_is_string(s) {
        Style::Plain
    } else {
        Style::Double
    };
    match requested {
        Style::Plain if !allowed.plain => {
            if allowed.single {
                Style::Single
            } else {
                Style::Double
            }
        }
        Style::Literal if !allowed.block || simple_key => Style::Double,
        style => style,
    }
}

/// The emitter's analysis of a scalar, for block context.
fn analyze(s: &str) -> Allowed {
    if s.is_empty() {
        return Allowed {
            plain: true,
            single: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading, mut trailing, mut breaks, mut special) = (false, false, false, false);
    let (mut break_space, mut space_break, mut trailing_space) = (false, false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_blank = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_blank = chars.get(i + 1).is_none_or(|n| matches!(n, ' ' | '\t'));
        indicators |= match (i, c) {
            (0, '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"')
            | (0, '%' | '@' | '`') => true,
            (0, '?' | ':' | '-') | (1.., ':') => followed_by_blank,
            (1.., '#') => preceded_by_blank,
            _ => false,
        };
        special |= !is_printable(c);
        let last = i + 1 == chars.len();
        if c == ' ' {
            leading |= i == 0;
            trailing |= last;
            trailing_space |= last;
            break_space |= previous_break;
            (previous_space, previous_break) = (true, false);
        } else if is_break(c) {
            breaks = true;
            leading |= i == 0;
            trailing |= last;
            space_break |= previous_space;
            (previous_space, previous_break) = (false, true);
        } else {
            (previous_space, previous_break) = (false, false);
        }
        preceded_by_blank = matches!(c, ' ' | '\t' | '\0') || is_break(c);
    }
    Allowed {
        plain: !(leading
            || trailing
            || break_space
            || space_break
            || special
            || breaks
            || indicators),
        single: !(break_space || space_break || special),
        block: !(trailing_space || space_break || special),
    }
}
