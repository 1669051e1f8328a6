//! go-yaml v2's order of string map keys: letters after other characters, digit runs by value.

use std::cmp::Ordering;

/// Compares two keys as go-yaml v2's `keyList.Less` does.
pub(super) fn compare(a: &str, b: &str) -> Ordering {
    if less(a, b) {
        Ordering::Less
    } else if less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn less(a: &str, b: &str) -> bool {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (is_letter(ar[i]), is_letter(br[i]));
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            // A zero inside a number (not a leading one) compares as a digit, not as a value.
            if ar[..i]
                .iter()
                .rev()
                .take_while(|c| is_digit(**c))
                .any(|c| *c != '0')
            {
                an = 1;
                bn = 1;
            }
        }
        let (an, ai) = digit_run(&ar, i, an);
        let (bn, bi) = digit_run(&br, i, bn);
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// The value of the digit run starting at `start` (Go's wrapping arithmetic) and where it ends.
fn digit_run(chars: &[char], start: usize, mut value: i64) -> (i64, usize) {
    let mut end = start;
    while end < chars.len() && is_digit(chars[end]) {
        let digit = i64::from(u32::from(chars[end])) - i64::from(u32::from('0'));
        value = value.wrapping_mul(10).wrapping_add(digit);
        end += 1;
    }
    (value, end)
}

/// Go's `unicode.IsLetter`, approximated outside ASCII by Rust's alphabetic property.
fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.is_alphabetic()
    }
}

/// Go's `unicode.IsDigit`, approximated outside ASCII by Rust's numeric property.
fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        c.is_numeric()
    }
}
