//! The executor: a parsed template rendered over a [`Value`] — the
//! actions (`if`, `range`, `with`), pipelines and field lookups, and the
//! functions (`print`, `printf`, `eq`, the Sprig string functions, ...).

use std::cmp::Ordering;

use super::lexer::{TemplateError, error_pos};
use super::parser::{Command, Node, Operand, Pipeline};
use super::value::Value;

/// Renders `nodes` with `data` as `.` and `$`.
pub(super) fn render(nodes: &[Node], data: &Value) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut scope = Scope {
        vars: vec![(String::new(), data.clone())],
    };
    exec(nodes, data, &mut scope, &mut out)?;
    Ok(out)
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
