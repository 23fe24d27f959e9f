//! The parser: the syntax tree of a template ([`Node`], [`Pipeline`],
//! [`Command`], [`Operand`]) and the parsing of the lexer's pieces and
//! tokens into it, refusing what the supported subset leaves out.

use super::lexer::{Piece, TemplateError, Token, error_at, position, split, tokenize};
use super::value::Value;

/// Parses `source` into its nodes; anything outside the supported subset
/// is an error naming the construct.
pub(super) fn parse(source: &str) -> Result<Vec<Node>, TemplateError> {
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
    Ok(nodes)
}

#[derive(Clone, Debug)]
pub(super) enum Node {
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
pub(super) struct Pipeline {
    pub(super) at: (u32, u32),
    pub(super) commands: Vec<Command>,
}

#[derive(Clone, Debug)]
pub(super) struct Command {
    pub(super) operands: Vec<Operand>,
}

#[derive(Clone, Debug)]
pub(super) enum Operand {
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
