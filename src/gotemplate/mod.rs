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
//!
//! Layout, the data flowing one way (a file imports only those listed
//! before it): `value` (the data, with Go's ordering, truth and printing),
//! `lexer` (text and actions, tokens, positions and [`TemplateError`]),
//! `parser` (the syntax tree), `exec` (rendering and the functions); this
//! file is the door, [`Template::parse`] and [`Template::render`].

mod exec;
mod lexer;
mod parser;
mod value;

pub use lexer::TemplateError;
pub use value::{Map, Struct, Value};

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    nodes: Vec<parser::Node>,
}

impl Template {
    /// Parses `source`; anything outside the supported subset is an error
    /// naming the construct.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            nodes: parser::parse(source)?,
        })
    }

    /// Renders with `data` as `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        exec::render(&self.nodes, data)
    }
}

#[cfg(test)]
mod tests;
