//! The lexer: template text cut into text and `{{ }}` actions (trim
//! markers and comments applied), actions cut into tokens. Also where
//! positions come from: [`TemplateError`] and the helpers that turn a byte
//! offset of the source into its line and column.

/// A template problem, at a 1-based line and column of the template text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TemplateError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

pub(super) fn position(source: &str, offset: usize) -> (u32, u32) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, column)
}

pub(super) fn error_at(source: &str, offset: usize, message: impl Into<String>) -> TemplateError {
    let (line, column) = position(source, offset);
    TemplateError {
        line,
        column,
        message: message.into(),
    }
}

pub(super) fn error_pos(at: (u32, u32), message: impl Into<String>) -> TemplateError {
    TemplateError {
        line: at.0,
        column: at.1,
        message: message.into(),
    }
}

/// Text or the inside of one `{{ }}` action (trim markers applied).
#[derive(Debug)]
pub(super) enum Piece {
    Text(String),
    /// The action's inner text and its byte offset in the source.
    Action(String, usize),
}

pub(super) fn split(source: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(found) = source[rest..].find("{{") {
        let open = rest + found;
        let mut text = &source[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner_start = open + 2;
        let bytes = source.as_bytes();
        let trim_left = bytes.get(inner_start) == Some(&b'-')
            && bytes
                .get(inner_start + 1)
                .is_some_and(|c| c.is_ascii_whitespace());
        if trim_left {
            text = text.trim_end();
            inner_start += 1;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        let close = find_close(source, inner_start)
            .ok_or_else(|| error_at(source, open, "unclosed action: no matching }}"))?;
        let mut inner_end = close;
        trim_next = false;
        if close >= inner_start + 2
            && bytes[close - 1] == b'-'
            && bytes[close - 2].is_ascii_whitespace()
        {
            inner_end -= 1;
            trim_next = true;
        }
        let inner = source[inner_start..inner_end].trim();
        let comment = inner.starts_with("/*");
        if comment && !inner.ends_with("*/") {
            return Err(error_at(source, open, "unclosed comment"));
        }
        if !comment {
            pieces.push(Piece::Action(
                inner.to_owned(),
                inner_start
                    + (source[inner_start..inner_end].len()
                        - source[inner_start..inner_end].trim_start().len()),
            ));
        }
        rest = close + 2;
    }
    let mut text = &source[rest..];
    if trim_next {
        text = text.trim_start();
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_owned()));
    }
    Ok(pieces)
}

/// The offset of the `}}` closing an action that starts at `from`, skipping
/// string literals and comments.
fn find_close(source: &str, from: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = source[i + 2..].find("*/")?;
                i += 2 + end + 1;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Token {
    Field(Vec<String>),
    Variable(String, Vec<String>),
    Str(String),
    Int(i64),
    Ident(String),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

pub(super) fn tokenize(
    text: &str,
    base: usize,
    source: &str,
) -> Result<Vec<(Token, usize)>, TemplateError> {
    let err = |offset: usize, message: String| error_at(source, base + offset, message);
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let fields = |i: &mut usize| -> Vec<String> {
        let mut chain = Vec::new();
        while *i < bytes.len() && bytes[*i] == b'.' {
            let start = *i + 1;
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            if end == start {
                break;
            }
            chain.push(text[start..end].to_owned());
            *i = end;
        }
        chain
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'|' => {
                tokens.push((Token::Pipe, base + start));
                i += 1;
            }
            b'(' => {
                tokens.push((Token::Open, base + start));
                i += 1;
            }
            b')' => {
                tokens.push((Token::Close, base + start));
                i += 1;
                if bytes.get(i) == Some(&b'.') {
                    return Err(err(
                        i,
                        "a field of a parenthesized pipeline is not supported".into(),
                    ));
                }
            }
            b',' => {
                tokens.push((Token::Comma, base + start));
                i += 1;
            }
            b':' if bytes.get(i + 1) == Some(&b'=') => {
                tokens.push((Token::Declare, base + start));
                i += 2;
            }
            b'=' => {
                tokens.push((Token::Assign, base + start));
                i += 1;
            }
            b'.' => {
                let chain = fields(&mut i);
                if chain.is_empty() {
                    i += 1;
                }
                tokens.push((Token::Field(chain), base + start));
            }
            b'$' => {
                i += 1;
                let name_start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let name = text[name_start..i].to_owned();
                let chain = fields(&mut i);
                tokens.push((Token::Variable(name, chain), base + start));
            }
            b'"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    let Some(&b) = bytes.get(i) else {
                        return Err(err(start, "unterminated string".into()));
                    };
                    match b {
                        b'"' => break,
                        b'\\' => {
                            let escaped = match bytes.get(i + 1) {
                                Some(b'n') => '\n',
                                Some(b't') => '\t',
                                Some(b'\\') => '\\',
                                Some(b'"') => '"',
                                _ => {
                                    return Err(err(
                                        i,
                                        "only the escapes \\n \\t \\\\ \\\" are supported in strings"
                                            .into(),
                                    ));
                                }
                            };
                            value.push(escaped);
                            i += 2;
                        }
                        _ => {
                            let ch = text[i..].chars().next().expect("inside the text");
                            value.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                i += 1;
                tokens.push((Token::Str(value), base + start));
            }
            b'`' => {
                let end = text[i + 1..]
                    .find('`')
                    .ok_or_else(|| err(start, "unterminated raw string".into()))?;
                tokens.push((
                    Token::Str(text[i + 1..i + 1 + end].to_owned()),
                    base + start,
                ));
                i += end + 2;
            }
            b'0'..=b'9' | b'-' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let number = &text[start..i];
                let value = number
                    .parse::<i64>()
                    .map_err(|_| err(start, format!("number {number:?} is not supported")))?;
                if i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    return Err(err(
                        start,
                        "only decimal integer literals are supported".into(),
                    ));
                }
                tokens.push((Token::Int(value), base + start));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                tokens.push((Token::Ident(text[start..i].to_owned()), base + start));
                if bytes.get(i) == Some(&b'.') {
                    return Err(err(
                        i,
                        "a field of a function result is not supported".into(),
                    ));
                }
            }
            _ => {
                let ch = text[i..].chars().next().expect("inside the text");
                return Err(err(i, format!("unexpected character {ch:?} in an action")));
            }
        }
    }
    Ok(tokens)
}
