//! Text from elsewhere (a repository, a runspec, a command line) shown to
//! a person: control characters escaped so a name cannot move the cursor
//! or recolour a terminal, and quoted input cut to a length that fits a
//! one-line message.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest quoted input a message shows, in characters.
pub const QUOTED_MAX: usize = 120;

/// `s` with control characters (C0, DEL, C1) written as escapes (`\n`,
/// `\t`, `\x1b`, `\u{9b}`); everything else, backslashes included, as
/// it is, so plain names show unchanged. Borrowed when nothing needs it.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` for a message: control characters escaped, and cut to
/// [`QUOTED_MAX`] characters with its full length said
/// (`abc… (31457280 bytes)`) when longer.
pub fn quoted(s: &str) -> String {
    let escaped = escape_control(s);
    if escaped.chars().count() <= QUOTED_MAX {
        return escaped.into_owned();
    }
    let cut: String = escaped.chars().take(QUOTED_MAX).collect();
    format!("{cut}… ({} bytes)", s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape_control("org/name-1.2 é"), Cow::Borrowed(_)));
        assert_eq!(escape_control("a\\b"), "a\\b");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_control("a\nb\tc\x1b[31md\u{9b}"),
            "a\\nb\\tc\\x1b[31md\\u{9b}"
        );
        assert_eq!(escape_control("\x7f"), "\\x7f");
    }

    #[test]
    fn long_input_is_cut_with_its_length() {
        let long = "x".repeat(100_000);
        let q = quoted(&long);
        assert!(q.starts_with(&"x".repeat(QUOTED_MAX)), "{q}");
        assert!(q.ends_with("… (100000 bytes)"), "{q}");
        assert!(q.chars().count() < QUOTED_MAX + 30);
        assert_eq!(quoted("short"), "short");
        // Cut by characters, never inside one.
        assert!(quoted(&"é".repeat(500)).ends_with("… (1000 bytes)"));
    }
}
