//! Writing a new value in a scalar's existing style.
//!
//! Plain stays plain when the value is safe as a plain scalar in its
//! context and every YAML reader Kubernetes users meet (YAML 1.2 core
//! schema, and YAML 1.1 as go-yaml v2 / sigs.k8s.io/yaml, PyYAML and
//! ruamel read it) would still read it as a string; otherwise it is
//! double-quoted. Single-quoted stays single-quoted unless the value has
//! characters single quotes cannot hold. Double-quoted stays double-quoted
//! with escapes. The rules err on the side of quoting: an extra pair of
//! quotes is harmless, a tag read as the number `1.1` is not.

use super::tree::Style;

/// The source text for `value` in a scalar written in `style`.
/// `in_flow`: the scalar is inside `[...]` or `{...}`.
/// Block styles are refused before this is called.
pub(crate) fn render(value: &str, style: Style, in_flow: bool) -> String {
    match style {
        Style::Plain if plain_is_safe(value, in_flow) => value.to_owned(),
        Style::Single if single_is_safe(value) => single_quote(value),
        _ => double_quote(value),
    }
}

/// True when some YAML reader would resolve the plain scalar `value` to a
/// null, bool, number, timestamp, merge key or value key rather than a string.
pub fn reads_as_non_string(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "<<" | "="
    ) {
        return true;
    }
    let unsigned = value
        .strip_prefix('+')
        .or_else(|| value.strip_prefix('-'))
        .unwrap_or(value);
    let lower_unsigned = unsigned.to_ascii_lowercase();
    if matches!(lower_unsigned.as_str(), ".inf" | ".nan") {
        return true;
    }
    is_number(unsigned) || is_sexagesimal(unsigned) || is_timestamp(value)
}

/// Integers in any base YAML 1.1 or 1.2 knows, and floats, with `_`
/// separators as YAML 1.1 allows them. `unsigned` has its sign removed.
fn is_number(unsigned: &str) -> bool {
    let first = unsigned.bytes().next();
    if !first.is_some_and(|b| b.is_ascii_digit() || b == b'.') {
        return false;
    }
    let digits: String = unsigned.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return false;
    }
    let lower = digits.to_ascii_lowercase();
    let all = |s: &str, ok: fn(&u8) -> bool| !s.is_empty() && s.as_bytes().iter().all(ok);
    if let Some(hex) = lower.strip_prefix("0x") {
        // Hex floats (`0x1p-2`) too, as Go's ParseFloat reads them.
        return all(hex, |b| b.is_ascii_hexdigit() || b"p.+-".contains(b));
    }
    if let Some(oct) = lower.strip_prefix("0o") {
        return all(oct, |b| (b'0'..=b'7').contains(b));
    }
    if let Some(bin) = lower.strip_prefix("0b") {
        return all(bin, |b| *b == b'0' || *b == b'1');
    }
    // Plain decimal (and YAML 1.1 octal `0755`) integers, then floats:
    // `1.10`, `1.`, `.5`, `1e3`, `1.5E+3`. `f64::from_str` agrees with
    // those grammars on inputs that start with a digit or a dot, and
    // rejects `1.2.3`.
    all(&digits, u8::is_ascii_digit) || digits.parse::<f64>().is_ok()
}

/// YAML 1.1 base-60 numbers: `1:30`, `190:20:30.15`.
fn is_sexagesimal(unsigned: &str) -> bool {
    let mut parts = unsigned.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    let digit_or_sep =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !digit_or_sep(first) {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return false;
    }
    let last = rest.len() - 1;
    rest.iter().enumerate().all(|(i, part)| {
        let whole = if i == last {
            part.split_once('.').map_or(*part, |(w, _)| w)
        } else {
            part
        };
        !whole.is_empty() && whole.len() <= 2 && whole.bytes().all(|b| b.is_ascii_digit())
    })
}

/// YAML 1.1 timestamps: `2001-12-14`, `2001-12-14t21:59:43.10-05:00`,
/// `2001-12-14 21:59:43.10 -5`. Anything with such a date prefix followed
/// by a time separator is treated as one.
fn is_timestamp(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if !(digits(0..4) && b.get(4) == Some(&b'-')) {
        return false;
    }
    // Month and day are one or two digits.
    let mut i = 5;
    for field in 0..2 {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        if i == start {
            return false;
        }
        if field == 0 {
            if b.get(i) != Some(&b'-') {
                return false;
            }
            i += 1;
        }
    }
    match b.get(i) {
        None => true,
        Some(c) => matches!(c, b'T' | b't' | b' ' | b'\t'),
    }
}

/// Characters YAML allows unescaped in a scalar (c-printable), minus line
/// breaks, tabs and the byte order mark, which the writers here never
/// emit unescaped.
fn is_plain_printable(c: char) -> bool {
    matches!(c,
        '\u{20}'..='\u{7e}'
        | '\u{a0}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fefe}'
        | '\u{ff00}'..='\u{fffd}'
        | '\u{10000}'..='\u{10ffff}')
        && !matches!(c, '\u{2028}' | '\u{2029}')
}

fn plain_is_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let last = value.chars().last().unwrap_or(first);
    !reads_as_non_string(value)
        && value.chars().all(is_plain_printable)
        && !"-?:,[]{}#&*!|>'\"%@`".contains(first)
        && first != ' '
        && last != ' '
        && last != ':'
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.starts_with("---")
        && !value.starts_with("...")
        && !(in_flow && value.contains([',', '[', ']', '{', '}']))
}

fn single_is_safe(value: &str) -> bool {
    value.chars().all(is_plain_printable)
}

fn single_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A one-line double-quoted scalar: `"`, `\` and everything outside the
/// printable set are escaped.
pub(crate) fn double_quote(value: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if is_plain_printable(c) => out.push(c),
            c if u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_yaml_reads_as_other_types_are_recognised() {
        for v in [
            "",
            "~",
            "null",
            "NULL",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "False",
            "1",
            "-1",
            "+12",
            "0755",
            "0x1F",
            "0o17",
            "0b101",
            "1_000",
            "1.10",
            "1.",
            ".5",
            "1e3",
            "1E+3",
            "-1.5e-3",
            "0x1p-2",
            ".inf",
            "-.Inf",
            ".NaN",
            "1:30",
            "190:20:30.15",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 -5",
            "<<",
            "=",
        ] {
            assert!(reads_as_non_string(v), "{v:?} should need quotes");
        }
    }

    #[test]
    fn ordinary_tags_and_references_stay_strings() {
        for v in [
            "6.1.0",
            "v1.2.3",
            "1.2.3-rc.1",
            "latest",
            "main-abc123-1700000000",
            "ghcr.io/stefanprodan/podinfo:6.1.0",
            "sha256:0123456789abcdef",
            "nginx@sha256:ab",
            "1.2.3.4",
            "2024-01-15-abc",
            "inf",
            "yesterday",
            "0x",
            "1:3a",
            "_1",
        ] {
            assert!(!reads_as_non_string(v), "{v:?} should stay plain");
        }
    }

    #[test]
    fn plain_becomes_quoted_only_when_needed() {
        let cases = [
            ("6.2.0", false, "6.2.0"),
            ("ghcr.io/a/b:6.2.0", false, "ghcr.io/a/b:6.2.0"),
            ("ghcr.io/a/b:6.2.0", true, "ghcr.io/a/b:6.2.0"),
            ("1.10", false, "\"1.10\""),
            ("yes", false, "\"yes\""),
            ("0x1", false, "\"0x1\""),
            ("1e3", false, "\"1e3\""),
            ("", false, "\"\""),
            ("a: b", false, "\"a: b\""),
            ("a #b", false, "\"a #b\""),
            ("a,b", false, "a,b"),
            ("a,b", true, "\"a,b\""),
            ("*x", false, "\"*x\""),
            ("--- x", false, "\"--- x\""),
            ("tab\there", false, "\"tab\\there\""),
            ("é", false, "é"),
        ];
        for (value, in_flow, want) in cases {
            assert_eq!(render(value, Style::Plain, in_flow), want, "{value:?}");
        }
    }

    #[test]
    fn quoted_styles_are_kept_with_their_escapes() {
        assert_eq!(render("it's", Style::Single, false), "'it''s'");
        assert_eq!(render("1.10", Style::Single, false), "'1.10'");
        assert_eq!(render("a\nb", Style::Single, false), "\"a\\nb\"");
        assert_eq!(
            render("say \"hi\"\\", Style::Double, false),
            "\"say \\\"hi\\\"\\\\\""
        );
        assert_eq!(
            render("\u{1}\u{feff}\u{85}😀", Style::Double, false),
            "\"\\x01\\uFEFF\\N😀\""
        );
    }
}
