//! The data a template renders: [`Value`], [`Map`] and [`Struct`], modelled
//! on the Go values Flux passes, with Go's semantics for them — `fmtsort`
//! key order, truth, and what printing writes. Imports nothing of the
//! template machinery; the parser (literals) and the executor build on it.

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

    pub(super) fn kind(&self) -> &'static str {
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
    pub(super) fn truth(&self) -> bool {
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
    pub(super) fn printed(&self) -> Option<String> {
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

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.printed() {
            Some(text) => f.write_str(&text),
            None => write!(f, "<{}>", self.kind()),
        }
    }
}
