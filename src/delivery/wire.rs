//! Reading and writing what crosses between the bridge's parts: the field
//! reader every typed input decodes with, so that a bad message names the
//! field at fault (`deliveries[0].at: expected an integer`), and small
//! writers. Each object's inputs live with the object
//! ([`super::log::input`], [`super::registry::input`]); this is what they
//! share.

use std::fmt;

use crate::json::{self, Limits, Value};

/// A message that could not be read: which message, which field, and what
/// is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError {
    pub message: &'static str,
    pub path: String,
    pub what: String,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.message, self.what)
        } else {
            write!(f, "{} at {}: {}", self.message, self.path, self.what)
        }
    }
}

impl std::error::Error for MessageError {}

/// Reads the fields of one JSON object, naming the path of any that is wrong.
///
/// Its readers are never inlined: every decoder calls them dozens of times,
/// and inlined they would repeat the error path at each call (tens of KB of
/// the wasm that serves webhooks).
pub struct Fields<'v, 'a> {
    message: &'static str,
    path: String,
    value: &'v Value<'a>,
}

impl<'v, 'a> Fields<'v, 'a> {
    pub fn parse(message: &'static str, value: &'v Value<'a>) -> Result<Fields<'v, 'a>, MessageError> {
        Fields::at(message, String::new(), value)
    }

    pub fn at(message: &'static str, path: String, value: &'v Value<'a>) -> Result<Fields<'v, 'a>, MessageError> {
        let fields = Fields { message, path, value };
        if value.as_object().is_none() {
            return Err(fields.error("", format!("expected an object, found {}", value.describe())));
        }
        Ok(fields)
    }

    #[inline(never)]
    pub fn error(&self, name: &str, what: impl Into<String>) -> MessageError {
        let path = match (self.path.is_empty(), name.is_empty()) {
            (_, true) => self.path.clone(),
            (true, false) => name.to_owned(),
            (false, false) => format!("{}.{name}", self.path),
        };
        MessageError { message: self.message, path, what: what.into() }
    }

    pub fn get(&self, name: &str) -> Option<&'v Value<'a>> {
        self.value.get(name).filter(|v| **v != Value::Null)
    }

    #[inline(never)]
    pub fn str(&self, name: &str) -> Result<String, MessageError> {
        self.opt_str(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    #[inline(never)]
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, MessageError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.text().into_owned())),
            Some(v) => Err(self.error(name, format!("expected a string, found {}", v.describe()))),
        }
    }

    #[inline(never)]
    pub fn int(&self, name: &str) -> Result<i64, MessageError> {
        self.opt_int(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    #[inline(never)]
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, MessageError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.as_integer().and_then(|n| n.parse::<i64>().ok()) {
                Some(n) => Ok(Some(n)),
                None => Err(self.error(name, format!("expected an integer, found {}", v.describe()))),
            },
        }
    }

    #[inline(never)]
    pub fn bool(&self, name: &str) -> Result<bool, MessageError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.error(name, format!("expected true or false, found {}", v.describe()))),
        }
    }

    #[inline(never)]
    fn array(&self, name: &str) -> Result<&'v [Value<'a>], MessageError> {
        match self.get(name) {
            Some(Value::Array(items)) => Ok(items),
            Some(v) => Err(self.error(name, format!("expected an array, found {}", v.describe()))),
            None => Err(self.error(name, "missing")),
        }
    }

    #[inline(never)]
    fn opt_array(&self, name: &str) -> Result<&'v [Value<'a>], MessageError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(_) => self.array(name),
        }
    }

    #[inline(never)]
    pub fn strings(&self, name: &str) -> Result<Vec<String>, MessageError> {
        self.opt_array(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(|s| s.text().into_owned()).ok_or_else(|| self.error(&format!("{name}[{i}]"), "expected a string")))
            .collect()
    }

    /// The integers of the array `name` (absent: none), each as written.
    #[inline(never)]
    pub fn integers(&self, name: &str) -> Result<Vec<String>, MessageError> {
        self.opt_array(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_integer().map(str::to_owned).ok_or_else(|| self.error(&format!("{name}[{i}]"), "expected an integer")))
            .collect()
    }

    /// An HTTP status that may be absent (or null).
    pub fn opt_status(&self, name: &str) -> Result<Option<u16>, MessageError> {
        match self.opt_int(name)? {
            None => Ok(None),
            Some(s) => u16::try_from(s).map(Some).map_err(|_| self.error(name, "expected an HTTP status")),
        }
    }

    /// [`Fields::each`] over an array that may be absent.
    pub fn each_opt<T>(&self, name: &str, read: impl FnMut(&Fields<'v, 'a>) -> Result<T, MessageError>) -> Result<Vec<T>, MessageError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(_) => self.each(name, read),
        }
    }

    /// Each object of the array `name`, read by `read`.
    pub fn each<T>(&self, name: &str, mut read: impl FnMut(&Fields<'v, 'a>) -> Result<T, MessageError>) -> Result<Vec<T>, MessageError> {
        let base = if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) };
        let items = self.array(name)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            out.push(read(&Fields::at(self.message, format!("{base}[{i}]"), v)?)?);
        }
        Ok(out)
    }
}

/// A caller's report, a JSON array of objects, each read by `read`.
pub fn objects<T>(message: &'static str, text: &str, mut read: impl FnMut(&Fields<'_, '_>) -> Result<T, MessageError>) -> Result<Vec<T>, MessageError> {
    let value = parse(message, text, &Limits::INTERNAL)?;
    let Value::Array(items) = &value else {
        return Err(MessageError { message, path: String::new(), what: "expected an array".into() });
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        out.push(read(&Fields::at(message, format!("[{i}]"), v)?)?);
    }
    Ok(out)
}

pub fn parse<'a>(message: &'static str, text: &'a str, limits: &Limits) -> Result<Value<'a>, MessageError> {
    json::parse(text, limits).map_err(|e| MessageError { message, path: e.path().to_owned(), what: e.to_string() })
}

/// A JSON array of the given items' JSON.
pub fn array<T>(items: &[T], write: impl Fn(&T) -> String) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&write(item));
    }
    out.push(']');
    out
}

