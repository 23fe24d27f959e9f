//! A subset of Go's `text/template`, for Flux's
//! `ImageUpdateAutomation.spec.git.commit.messageTemplate`. Pure: no IO.
//!
//! Why hand-written rather than a crate: what matters here is that a Flux
//! template either renders exactly what Flux would write or is refused
//! with the construct named — never rendered differently. Flux's data is
//! Go values with Go semantics that a general engine would have to be
//! taught anyway: `.Changed.Objects` is a map keyed by a *struct*, ranged
//! in Go's `fmtsort` order (field by field) and dotted into
//! (`$resource.Kind`); `.AutomationObject` prints through its `String()`
//! method as `namespace/name`; a missing key of `.Values` (a
//! `map[string]string`) is the empty string. A full engine would also
//! accept everything else (printing whole structs and maps, every `printf`
//! verb, Flux's 70 Sprig functions), each a place to differ from Go's
//! formatting. This module accepts a small, exactly specified subset and
//! rejects the rest when the template is loaded, with its line and column.
//!
//! Supported:
//!
//! - text, `{{ pipeline }}`, `{{- ` / ` -}}` trimming, `{{/* comments */}}`;
//! - `if` / `else if` / `else` / `end`, `range` (over lists and maps, with
//!   `$v :=` or `$k, $v :=`, and `else`), `with` / `else` / `end`;
//! - operands: `.`, `.Field.Chain`, `$`, `$var.Field`, string (`"…"`,
//!   `` `…` ``), integer and `true`/`false` literals, `( pipeline )`;
//! - pipes `a | f b` (the value goes last, as in Go);
//! - functions `print`, `println`, `printf` (verbs `%s %v %d %q %%`), `len`,
//!   `index`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `not`, `and`, `or`, and the
//!   Sprig string functions `lower`, `upper`, `trim`, `trimPrefix`,
//!   `trimSuffix`, `contains`, `hasPrefix`, `hasSuffix`, `replace`, `join`.
//!
//! Rejected with the construct named: `define`, `template`, `block`,
//! `break`, `continue`, variable declarations and assignments outside
//! `range`, any other function, printing a list, map or struct that has no
//! `String()` form, and fields a value does not have.

use std::cmp::Ordering;
use std::fmt;

/// A value of the template's data, modelled on the Go value it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
    Map(Map),
    Struct(Struct),
}

/// A Go map: entries in the order Go's `range` visits them (sorted by key,
/// `fmtsort` rules), and the element type's zero value for a missing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    /// The Go type, for messages (`map[string]string`).
    pub type_name: &'static str,
    pub entries: Vec<(Value, Value)>,
    /// What `.key` / `index` give for a key the map lacks.
    pub zero: Box<Value>,
}

impl Map {
    /// Sorts `entries` by key as Go's `fmtsort` does.
    pub fn new(type_name: &'static str, mut entries: Vec<(Value, Value)>, zero: Value) -> Map {
        entries.sort_by(|a, b| go_cmp(&a.0, &b.0));
        Map {
            type_name,
            entries,
            zero: Box::new(zero),
        }
    }
}

/// A Go struct: its exported fields in declaration order and, when the
/// type has a `String()` method, what it returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Struct {
    pub type_name: &'static str,
    pub fields: Vec<(&'static str, Value)>,
    pub display: Option<String>,
}

impl Value {
    pub fn str(text: impl Into<String>) -> Value {
        Value::Str(text.into())
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
            Value::List(_) => "slice",
            Value::Map(m) => m.type_name,
            Value::Struct(s) => s.type_name,
        }
    }

    /// Go's truth: false, 0, "", empty slices and maps are false.
    fn truth(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Bool(b) => *b,
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.entries.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// What `{{ value }}` and `print` write; `None` for values whose Go
    /// formatting this module does not reproduce.
    fn printed(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Struct(Struct {
                display: Some(d), ..
            }) => Some(d.clone()),
            _ => None,
        }
    }
}

/// Go's `fmtsort` order for the key types Flux uses: strings, ints and
/// bools by value, structs field by field.
fn go_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Struct(x), Value::Struct(y)) => x
            .fields
            .iter()
            .zip(&y.fields)
            .map(|((_, p), (_, q))| go_cmp(p, q))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

/// A template problem, at a 1-based line and column of the template text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TemplateError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Output(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        key: Option<String>,
        value: Option<String>,
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// Commands joined by `|`, and where the pipeline starts (for messages).
#[derive(Clone, Debug)]
struct Pipeline {
    at: (u32, u32),
    commands: Vec<Command>,
}

#[derive(Clone, Debug)]
struct Command {
    operands: Vec<Operand>,
}

#[derive(Clone, Debug)]
enum Operand {
    /// `.A.B`; empty for `.`.
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone is the name "").
    Variable(String, Vec<String>),
    Literal(Value),
    Function(String),
    Nested(Box<Pipeline>),
}

const FUNCTIONS: &[&str] = &[
    "print",
    "println",
    "printf",
    "len",
    "index",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "not",
    "and",
    "or",
    "lower",
    "upper",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "replace",
    "join",
];

impl Template {
    /// Parses `source`; anything outside the supported subset is an error
    /// naming the construct.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let pieces = split(source)?;
        let mut parser = Parser {
            source,
            pieces,
            next: 0,
        };
        let (nodes, end) = parser.block()?;
        if let Some((keyword, at)) = end {
            return Err(error_at(
                source,
                at,
                format!("unexpected {{{{{keyword}}}}} without a matching if, range or with"),
            ));
        }
        Ok(Template { nodes })
    }

    /// Renders with `data` as `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut scope = Scope {
            vars: vec![(String::new(), data.clone())],
        };
        exec(&self.nodes, data, &mut scope, &mut out)?;
        Ok(out)
    }
}

fn position(source: &str, offset: usize) -> (u32, u32) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, column)
}

fn error_at(source: &str, offset: usize, message: impl Into<String>) -> TemplateError {
    let (line, column) = position(source, offset);
    TemplateError {
        line,
        column,
        message: message.into(),
    }
}

fn error_pos(at: (u32, u32), message: impl Into<String>) -> TemplateError {
    TemplateError {
        line: at.0,
        column: at.1,
        message: message.into(),
    }
}

/// Text or the inside of one `{{ }}` action (trim markers applied).
#[derive(Debug)]
enum Piece {
    Text(String),
    /// The action's inner text and its byte offset in the source.
    Action(String, usize),
}

fn split(source: &str) -> Result<Vec<Piece>, TemplateError> {
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
enum Token {
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

fn tokenize(text: &str, base: usize, source: &str) -> Result<Vec<(Token, usize)>, TemplateError> {
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

struct Parser<'a> {
    source: &'a str,
    pieces: Vec<Piece>,
    next: usize,
}

/// How a block ended: `end`, `else`, `else if ...`, with its offset.
type BlockEnd = Option<(String, usize)>;

impl Parser<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> TemplateError {
        error_at(self.source, offset, message)
    }

    /// Nodes up to an `end` or `else` action (returned) or the end of input.
    fn block(&mut self) -> Result<(Vec<Node>, BlockEnd), TemplateError> {
        let mut nodes = Vec::new();
        while self.next < self.pieces.len() {
            let piece = &self.pieces[self.next];
            self.next += 1;
            let (text, at) = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Piece::Action(text, at) => (text.clone(), *at),
            };
            let keyword = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            let rest = text[keyword.len()..].trim_start();
            let rest_at = at + (text.len() - rest.len());
            match keyword {
                "end" if rest.is_empty() => return Ok((nodes, Some(("end".into(), at)))),
                "else" => return Ok((nodes, Some((text.clone(), at)))),
                "if" => nodes.push(self.parse_if(rest, rest_at, at)?),
                "range" => nodes.push(self.parse_range(rest, rest_at, at)?),
                "with" => {
                    let pipeline = self.pipeline(rest, rest_at)?;
                    let (body, end) = self.block()?;
                    let otherwise = self.else_block(end, at, "with")?;
                    nodes.push(Node::With {
                        pipeline,
                        body,
                        otherwise,
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(self.err(
                        at,
                        format!("{{{{{keyword}}}}} is not supported in Flux commit templates by crowsnest"),
                    ));
                }
                _ => nodes.push(Node::Output(self.pipeline(&text, at)?)),
            }
        }
        Ok((nodes, None))
    }

    /// After a `with` or `range` body: an optional `else` block, then `end`.
    fn else_block(
        &mut self,
        end: BlockEnd,
        opened: usize,
        what: &str,
    ) -> Result<Vec<Node>, TemplateError> {
        match end {
            None => Err(self.err(opened, format!("{{{{{what}}}}} has no {{{{end}}}}"))),
            Some((e, _)) if e == "end" => Ok(Vec::new()),
            Some((e, at)) if e == "else" => {
                let (otherwise, end) = self.block()?;
                match end {
                    Some((e, _)) if e == "end" => Ok(otherwise),
                    Some((_, at)) => Err(self.err(at, format!("a second else in {{{{{what}}}}}"))),
                    None => Err(self.err(at, format!("{{{{{what}}}}} has no {{{{end}}}}"))),
                }
            }
            Some((_, at)) => Err(self.err(
                at,
                format!("{{{{else if}}}} (or else with) is not supported in {{{{{what}}}}}"),
            )),
        }
    }

    fn parse_if(&mut self, rest: &str, rest_at: usize, at: usize) -> Result<Node, TemplateError> {
        let mut branches = vec![(self.pipeline(rest, rest_at)?, Vec::new())];
        loop {
            let (body, end) = self.block()?;
            branches.last_mut().expect("one branch at least").1 = body;
            match end {
                None => return Err(self.err(at, "{{if}} has no {{end}}")),
                Some((e, _)) if e == "end" => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Some((e, _)) if e == "else" => {
                    let (otherwise, end) = self.block()?;
                    return match end {
                        Some((e, _)) if e == "end" => Ok(Node::If {
                            branches,
                            otherwise,
                        }),
                        Some((_, at)) => Err(self.err(at, "a second else in {{if}}")),
                        None => Err(self.err(at, "{{if}} has no {{end}}")),
                    };
                }
                Some((e, else_at)) => {
                    let cond = e["else".len()..].trim_start();
                    let Some(cond) = cond.strip_prefix("if") else {
                        return Err(self.err(else_at, format!("{{{{{e}}}}} is not supported")));
                    };
                    let cond_at = else_at + (e.len() - cond.trim_start().len());
                    branches.push((self.pipeline(cond.trim_start(), cond_at)?, Vec::new()));
                }
            }
        }
    }

    fn parse_range(
        &mut self,
        rest: &str,
        rest_at: usize,
        at: usize,
    ) -> Result<Node, TemplateError> {
        let tokens = tokenize(rest, rest_at, self.source)?;
        let declare = tokens.iter().position(|(t, _)| *t == Token::Declare);
        let (key, value, pipeline_tokens) = match declare {
            None => (None, None, &tokens[..]),
            Some(d) => {
                let names: Vec<&(Token, usize)> = tokens[..d].iter().collect();
                let var = |t: &(Token, usize)| match &t.0 {
                    Token::Variable(name, chain) if chain.is_empty() && !name.is_empty() => {
                        Ok(name.clone())
                    }
                    _ => Err(self.err(t.1, "range declares $variables")),
                };
                match names.as_slice() {
                    [v] => (None, Some(var(v)?), &tokens[d + 1..]),
                    [k, (Token::Comma, _), v] => (Some(var(k)?), Some(var(v)?), &tokens[d + 1..]),
                    _ => return Err(self.err(rest_at, "range declares $v or $k, $v")),
                }
            }
        };
        let pipeline = self.pipeline_tokens(pipeline_tokens, rest_at)?;
        let (body, end) = self.block()?;
        let otherwise = self.else_block(end, at, "range")?;
        Ok(Node::Range {
            key,
            value,
            pipeline,
            body,
            otherwise,
        })
    }

    fn pipeline(&self, text: &str, at: usize) -> Result<Pipeline, TemplateError> {
        let tokens = tokenize(text, at, self.source)?;
        self.pipeline_tokens(&tokens, at)
    }

    fn pipeline_tokens(
        &self,
        tokens: &[(Token, usize)],
        at: usize,
    ) -> Result<Pipeline, TemplateError> {
        let mut i = 0;
        let pipeline = self.parse_pipeline(tokens, &mut i, at)?;
        if let Some((_, offset)) = tokens.get(i) {
            return Err(self.err(*offset, "unexpected ) in an action"));
        }
        Ok(pipeline)
    }

    fn parse_pipeline(
        &self,
        tokens: &[(Token, usize)],
        i: &mut usize,
        at: usize,
    ) -> Result<Pipeline, TemplateError> {
        let start = tokens.get(*i).map_or(at, |t| t.1);
        let mut commands = Vec::new();
        let mut operands = Vec::new();
        while let Some((token, offset)) = tokens.get(*i) {
            match token {
                Token::Close => break,
                Token::Pipe => {
                    if operands.is_empty() {
                        return Err(self.err(*offset, "missing command before |"));
                    }
                    commands.push(Command {
                        operands: std::mem::take(&mut operands),
                    });
                    *i += 1;
                    continue;
                }
                Token::Declare | Token::Assign => {
                    return Err(self.err(
                        *offset,
                        "variable declarations and assignments are only supported in range",
                    ));
                }
                Token::Comma => return Err(self.err(*offset, "unexpected , in an action")),
                Token::Open => {
                    *i += 1;
                    let nested = self.parse_pipeline(tokens, i, *offset)?;
                    match tokens.get(*i) {
                        Some((Token::Close, _)) => *i += 1,
                        _ => return Err(self.err(*offset, "unclosed (")),
                    }
                    operands.push(Operand::Nested(Box::new(nested)));
                    continue;
                }
                Token::Field(chain) => operands.push(Operand::Field(chain.clone())),
                Token::Variable(name, chain) => {
                    operands.push(Operand::Variable(name.clone(), chain.clone()))
                }
                Token::Str(s) => operands.push(Operand::Literal(Value::Str(s.clone()))),
                Token::Int(n) => operands.push(Operand::Literal(Value::Int(*n))),
                Token::Ident(name) => match name.as_str() {
                    "true" => operands.push(Operand::Literal(Value::Bool(true))),
                    "false" => operands.push(Operand::Literal(Value::Bool(false))),
                    "nil" => return Err(self.err(*offset, "nil is not supported")),
                    f if FUNCTIONS.contains(&f) => {
                        if !operands.is_empty() {
                            return Err(self.err(
                                *offset,
                                format!("function {f} must come first in its command"),
                            ));
                        }
                        operands.push(Operand::Function(f.to_owned()))
                    }
                    other => {
                        return Err(self.err(
                            *offset,
                            format!(
                                "function {other:?} is not supported by crowsnest's Flux template subset (supported: {})",
                                FUNCTIONS.join(", ")
                            ),
                        ));
                    }
                },
            }
            *i += 1;
        }
        if operands.is_empty() {
            return Err(self.err(start, "missing value in an action"));
        }
        commands.push(Command { operands });
        for command in &commands {
            if command.operands.len() > 1 && !matches!(command.operands[0], Operand::Function(_)) {
                return Err(self.err(start, "arguments given to a value that is not a function"));
            }
        }
        Ok(Pipeline {
            at: position(self.source, start),
            commands,
        })
    }
}

struct Scope {
    vars: Vec<(String, Value)>,
}

impl Scope {
    fn get(&self, name: &str) -> Option<&Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

fn exec(
    nodes: &[Node],
    dot: &Value,
    scope: &mut Scope,
    out: &mut String,
) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Output(p) => {
                let value = eval_pipeline(p, dot, scope)?;
                out.push_str(&printed(&value, p.at)?);
            }
            Node::If {
                branches,
                otherwise,
            } => {
                let mut taken = false;
                for (condition, body) in branches {
                    if eval_pipeline(condition, dot, scope)?.truth() {
                        exec(body, dot, scope, out)?;
                        taken = true;
                        break;
                    }
                }
                if !taken {
                    exec(otherwise, dot, scope, out)?;
                }
            }
            Node::With {
                pipeline,
                body,
                otherwise,
            } => {
                let value = eval_pipeline(pipeline, dot, scope)?;
                if value.truth() {
                    exec(body, &value, scope, out)?;
                } else {
                    exec(otherwise, dot, scope, out)?;
                }
            }
            Node::Range {
                key,
                value,
                pipeline,
                body,
                otherwise,
            } => {
                let over = eval_pipeline(pipeline, dot, scope)?;
                let items: Vec<(Value, Value)> = match over {
                    Value::List(list) => list
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Int(i as i64), v))
                        .collect(),
                    Value::Map(map) => map.entries,
                    other => {
                        return Err(error_pos(
                            pipeline.at,
                            format!("range over a {} is not supported", other.kind()),
                        ));
                    }
                };
                if items.is_empty() {
                    exec(otherwise, dot, scope, out)?;
                }
                for (k, v) in items {
                    let depth = scope.vars.len();
                    if let Some(name) = key {
                        scope.vars.push((name.clone(), k));
                    }
                    if let Some(name) = value {
                        scope.vars.push((name.clone(), v.clone()));
                    }
                    let result = exec(body, &v, scope, out);
                    scope.vars.truncate(depth);
                    result?;
                }
            }
        }
    }
    Ok(())
}

fn printed(value: &Value, at: (u32, u32)) -> Result<String, TemplateError> {
    value.printed().ok_or_else(|| {
        error_pos(
            at,
            format!(
                "printing a whole {} is not supported; print its fields",
                value.kind()
            ),
        )
    })
}

fn field(value: &Value, name: &str, at: (u32, u32)) -> Result<Value, TemplateError> {
    match value {
        Value::Struct(s) => s
            .fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = s.fields.iter().map(|(n, _)| *n).collect();
                error_pos(
                    at,
                    format!(
                        "can't evaluate field {name} in type {} (fields: {})",
                        s.type_name,
                        known.join(", ")
                    ),
                )
            }),
        Value::Map(m) if m.entries.iter().all(|(k, _)| matches!(k, Value::Str(_))) => Ok(m
            .entries
            .iter()
            .find(|(k, _)| *k == Value::Str(name.to_owned()))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| (*m.zero).clone())),
        other => Err(error_pos(
            at,
            format!("can't evaluate field {name} in type {}", other.kind()),
        )),
    }
}

fn fields(mut value: Value, chain: &[String], at: (u32, u32)) -> Result<Value, TemplateError> {
    for name in chain {
        value = field(&value, name, at)?;
    }
    Ok(value)
}

fn eval_pipeline(p: &Pipeline, dot: &Value, scope: &Scope) -> Result<Value, TemplateError> {
    let mut piped: Option<Value> = None;
    for command in &p.commands {
        piped = Some(eval_command(command, dot, scope, piped, p.at)?);
    }
    Ok(piped.expect("a pipeline has at least one command"))
}

fn eval_operand(
    operand: &Operand,
    dot: &Value,
    scope: &Scope,
    at: (u32, u32),
) -> Result<Value, TemplateError> {
    match operand {
        Operand::Field(chain) => fields(dot.clone(), chain, at),
        Operand::Variable(name, chain) => {
            let value = scope
                .get(name)
                .ok_or_else(|| error_pos(at, format!("undefined variable ${name}")))?;
            fields(value.clone(), chain, at)
        }
        Operand::Literal(v) => Ok(v.clone()),
        Operand::Nested(p) => eval_pipeline(p, dot, scope),
        Operand::Function(f) => call(f, Vec::new(), at),
    }
}

fn eval_command(
    command: &Command,
    dot: &Value,
    scope: &Scope,
    piped: Option<Value>,
    at: (u32, u32),
) -> Result<Value, TemplateError> {
    match &command.operands[0] {
        Operand::Function(f) => {
            let mut args = command.operands[1..]
                .iter()
                .map(|o| eval_operand(o, dot, scope, at))
                .collect::<Result<Vec<_>, _>>()?;
            args.extend(piped);
            call(f, args, at)
        }
        operand => {
            if piped.is_some() {
                return Err(error_pos(at, "a value after | must be a function"));
            }
            eval_operand(operand, dot, scope, at)
        }
    }
}

fn want_str<'v>(f: &str, v: &'v Value, at: (u32, u32)) -> Result<&'v str, TemplateError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(error_pos(
            at,
            format!("{f} wants a string, got a {}", other.kind()),
        )),
    }
}

fn arity(f: &str, args: &[Value], n: usize, at: (u32, u32)) -> Result<(), TemplateError> {
    if args.len() != n {
        return Err(error_pos(
            at,
            format!("{f} takes {n} arguments, got {}", args.len()),
        ));
    }
    Ok(())
}

/// Go's `eq` on basic values.
fn basic_eq(a: &Value, b: &Value, at: (u32, u32)) -> Result<bool, TemplateError> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x == y),
        (Value::Int(x), Value::Int(y)) => Ok(x == y),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        _ => Err(error_pos(
            at,
            format!(
                "incompatible types for comparison: {} and {}",
                a.kind(),
                b.kind()
            ),
        )),
    }
}

fn ordered(a: &Value, b: &Value, at: (u32, u32)) -> Result<Ordering, TemplateError> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        _ => Err(error_pos(
            at,
            format!("cannot order a {} and a {}", a.kind(), b.kind()),
        )),
    }
}

/// `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value], at: (u32, u32)) -> Result<String, TemplateError> {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !matches!(arg, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&printed(arg, at)?);
    }
    Ok(out)
}

/// Go's `strconv.Quote` for the characters commit messages hold.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn sprintf(format: &str, args: &[Value], at: (u32, u32)) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars
            .next()
            .ok_or_else(|| error_pos(at, "printf format ends with %"))?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = next
            .next()
            .ok_or_else(|| error_pos(at, format!("printf %{verb} has no argument")))?;
        match (verb, arg) {
            ('s' | 'v', v) => out.push_str(&printed(v, at)?),
            ('d', Value::Int(i)) => out.push_str(&i.to_string()),
            ('q', Value::Str(s)) => out.push_str(&go_quote(s)),
            (verb, arg) if "sdvq".contains(verb) => {
                return Err(error_pos(
                    at,
                    format!("printf %{verb} of a {} is not supported", arg.kind()),
                ));
            }
            (verb, _) => {
                return Err(error_pos(
                    at,
                    format!("printf verb %{verb} is not supported (supported: %s %v %d %q %%)"),
                ));
            }
        }
    }
    if next.next().is_some() {
        return Err(error_pos(at, "printf has more arguments than verbs"));
    }
    Ok(out)
}

fn call(f: &str, args: Vec<Value>, at: (u32, u32)) -> Result<Value, TemplateError> {
    let s = |i: usize| want_str(f, &args[i], at);
    Ok(match f {
        "print" => Value::Str(sprint(&args, at)?),
        "println" => {
            let parts = args
                .iter()
                .map(|a| printed(a, at))
                .collect::<Result<Vec<_>, _>>()?;
            Value::Str(parts.join(" ") + "\n")
        }
        "printf" => {
            let Some((format, rest)) = args.split_first() else {
                return Err(error_pos(at, "printf needs a format"));
            };
            Value::Str(sprintf(want_str(f, format, at)?, rest, at)?)
        }
        "len" => {
            arity(f, &args, 1, at)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.entries.len(),
                other => {
                    return Err(error_pos(
                        at,
                        format!("len of a {} is not defined", other.kind()),
                    ));
                }
            } as i64)
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return Err(error_pos(at, "index needs a value"));
            };
            let mut value = first.clone();
            for key in keys {
                value = match (&value, key) {
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).unwrap_or(usize::MAX))
                        .cloned()
                        .ok_or_else(|| error_pos(at, format!("index {i} out of range")))?,
                    (Value::Map(m), key) => m
                        .entries
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| (*m.zero).clone()),
                    (v, k) => {
                        return Err(error_pos(
                            at,
                            format!("cannot index a {} with a {}", v.kind(), k.kind()),
                        ));
                    }
                };
            }
            value
        }
        "eq" => {
            if args.len() < 2 {
                return Err(error_pos(at, "eq takes at least 2 arguments"));
            }
            let mut any = false;
            for other in &args[1..] {
                any |= basic_eq(&args[0], other, at)?;
            }
            Value::Bool(any)
        }
        "ne" => {
            arity(f, &args, 2, at)?;
            Value::Bool(!basic_eq(&args[0], &args[1], at)?)
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(f, &args, 2, at)?;
            let o = ordered(&args[0], &args[1], at)?;
            Value::Bool(match f {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "not" => {
            arity(f, &args, 1, at)?;
            Value::Bool(!args[0].truth())
        }
        "and" | "or" => {
            if args.is_empty() {
                return Err(error_pos(at, format!("{f} takes at least 1 argument")));
            }
            let want = f == "or";
            let last = args.len() - 1;
            args.into_iter()
                .enumerate()
                .find(|(i, v)| v.truth() == want || *i == last)
                .map(|(_, v)| v)
                .expect("the last argument is always found")
        }
        "lower" | "upper" | "trim" => {
            arity(f, &args, 1, at)?;
            let text = s(0)?;
            Value::Str(match f {
                "lower" => text.to_lowercase(),
                "upper" => text.to_uppercase(),
                _ => text.trim().to_owned(),
            })
        }
        "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
            arity(f, &args, 2, at)?;
            let (affix, text) = (s(0)?, s(1)?);
            match f {
                "trimPrefix" => Value::Str(text.strip_prefix(affix).unwrap_or(text).to_owned()),
                "trimSuffix" => Value::Str(text.strip_suffix(affix).unwrap_or(text).to_owned()),
                "contains" => Value::Bool(text.contains(affix)),
                "hasPrefix" => Value::Bool(text.starts_with(affix)),
                _ => Value::Bool(text.ends_with(affix)),
            }
        }
        "replace" => {
            arity(f, &args, 3, at)?;
            Value::Str(s(2)?.replace(s(0)?, s(1)?))
        }
        "join" => {
            arity(f, &args, 2, at)?;
            let Value::List(items) = &args[1] else {
                return Err(error_pos(at, "join wants a separator and a list"));
            };
            let parts = items
                .iter()
                .map(|i| printed(i, at))
                .collect::<Result<Vec<_>, _>>()?;
            Value::Str(parts.join(s(0)?))
        }
        other => {
            return Err(error_pos(
                at,
                format!("function {other:?} is not supported"),
            ));
        }
    })
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.printed() {
            Some(text) => f.write_str(&text),
            None => write!(f, "<{}>", self.kind()),
        }
    }
}

#[cfg(test)]
mod tests;
