//! A JSON reader and writer that keeps every token exactly as received.
//!
//! Why not a general-purpose JSON library: a bridge must pass Drift's events
//! through digit for digit (ids above 2^53, decimals such as `1.10`), keep
//! unknown fields in their order, and refuse documents that two readers could
//! understand differently, above all an object with the same key twice: a
//! verifier and a forwarder must never read two different `token`s from the
//! same bytes. So numbers and strings stay slices of the input, objects stay
//! ordered lists of members, duplicate keys are an error, and nesting and size
//! are bounded before any work is done.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::error::{Error, ErrorCode};
use crate::escape::escape_into;
pub use crate::escape::write_str_escaped;
use crate::path::{self, Segment};

/// Default limit on the size of one event, in bytes (64 KiB).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
/// Default limit on how deeply arrays and objects may nest.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Bounds enforced before and while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of arrays and objects.
    pub max_depth: usize,
}

impl Limits {
    /// For what the bridge's own parts send each other (hand-offs, Durable
    /// Object calls and replies): their size is bounded where the events came
    /// in, and event bodies travel inside as strings, so they nest shallowly.
    pub const INTERNAL: Limits = Limits { max_bytes: usize::MAX, max_depth: 8 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: DEFAULT_MAX_BYTES, max_depth: DEFAULT_MAX_DEPTH }
    }
}

/// A JSON value whose numbers and strings are kept as their source text.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// The number exactly as written, e.g. `9007199254740993` or `1.10`.
    Number(Cow<'a, str>),
    String(Str<'a>),
    Array(Vec<Value<'a>>),
    /// Members in their original order.
    Object(Vec<(Str<'a>, Value<'a>)>),
}

/// A JSON string kept as the text between its quotes, escapes and all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Str<'a> {
    raw: Cow<'a, str>,
    escaped: bool,
}

impl<'a> Str<'a> {
    /// A string with no escapes to keep (safe for any text: it is escaped
    /// on the way in).
    pub fn new(text: &str) -> Str<'static> {
        let mut raw = String::with_capacity(text.len());
        escape_into(&mut raw, text);
        let escaped = raw.len() != text.len();
        Str { raw: Cow::Owned(raw), escaped }
    }

    /// The decoded text.
    pub fn text(&self) -> Cow<'_, str> {
        if self.escaped {
            Cow::Owned(unescape(&self.raw))
        } else {
            Cow::Borrowed(&self.raw)
        }
    }

    /// Whether the decoded text equals `other`, without allocating when the
    /// source had no escapes.
    pub fn eq_text(&self, other: &str) -> bool {
        if self.escaped {
            unescape(&self.raw) == other
        } else {
            self.raw == other
        }
    }

    /// The text between the quotes, as received.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

impl<'a> Value<'a> {
    /// Members of an object.
    pub fn as_object(&self) -> Option<&[(Str<'a>, Value<'a>)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_object()?.iter().find(|(k, _)| k.eq_text(key)).map(|(_, v)| v)
    }

    /// The raw text of a number that is an integer (no fraction, no exponent).
    pub fn as_integer(&self) -> Option<&str> {
        match self {
            Value::Number(n) if is_integer(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&Str<'a>> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// How the value is described in error messages ("found a string").
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if is_integer(n) => "an integer",
            Value::Number(_) => "a non-integer number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// Compact JSON, every number and string as received.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write(&mut out);
        out
    }

    /// Appends compact JSON to `out`.
    pub fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => out.push_str(n),
            Value::String(s) => write_raw_str(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_raw_str(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl Value<'_> {
    /// JSON indented by two spaces, every number and string as received.
    pub fn to_pretty_json(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, indent: usize) {
        let newline = |out: &mut String, level: usize| {
            out.push('\n');
            for _ in 0..level {
                out.push_str("  ");
            }
        };
        match self {
            Value::Array(items) if !items.is_empty() => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, indent + 1);
                    item.write_pretty(out, indent + 1);
                }
                newline(out, indent);
                out.push(']');
            }
            Value::Object(members) if !members.is_empty() => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, indent + 1);
                    write_raw_str(out, key);
                    out.push_str(": ");
                    value.write_pretty(out, indent + 1);
                }
                newline(out, indent);
                out.push('}');
            }
            other => other.write(out),
        }
    }
}

fn write_raw_str(out: &mut String, s: &Str<'_>) {
    out.push('"');
    out.push_str(&s.raw);
    out.push('"');
}

/// A JSON array of strings: `["a","b"]`.
pub fn string_array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str_escaped(&mut out, item);
    }
    out.push(']');
    out
}

/// Writes a JSON object member by member, for the bridge's own messages:
/// `Writer::object().str("id", "a").int("g", 3).finish()` is
/// `{"id":"a","g":3}`. Keys are written as given (they are this crate's
/// own names, never input).
#[derive(Clone, Debug)]
pub struct Writer {
    out: String,
    empty: bool,
}

impl Writer {
    /// Starts an object.
    pub fn object() -> Writer {
        Writer::with_capacity(64)
    }

    pub fn with_capacity(capacity: usize) -> Writer {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        Writer { out, empty: true }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        &mut self.out
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Writer {
        write_str_escaped(self.key(key), value);
        self
    }

    /// A string member, or nothing when `value` is `None`.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Writer {
        if let Some(value) = value {
            self.str(key, value);
        }
        self
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Writer {
        let out = self.key(key);
        out.push_str(&value.to_string());
        self
    }

    /// An integer member, or nothing when `value` is `None`.
    pub fn opt_int(&mut self, key: &str, value: Option<i64>) -> &mut Writer {
        if let Some(value) = value {
            self.int(key, value);
        }
        self
    }

    /// An integer member, or `null`.
    pub fn int_or_null(&mut self, key: &str, value: Option<i64>) -> &mut Writer {
        match value {
            Some(value) => self.int(key, value),
            None => self.raw(key, "null"),
        }
    }

    /// A string member, or `null`.
    pub fn str_or_null(&mut self, key: &str, value: Option<&str>) -> &mut Writer {
        match value {
            Some(value) => self.str(key, value),
            None => self.raw(key, "null"),
        }
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Writer {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// A member whose value is already JSON.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Writer {
        self.key(key).push_str(json);
        self
    }

    /// The object's JSON text.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.out);
        out.push('}');
        self.empty = true;
        out
    }
}

/// Whether a JSON number's text is an integer.
pub fn is_integer(number: &str) -> bool {
    !number.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// Decodes the escapes of a string already checked by the parser.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let hi = hex4(&mut chars);
                let code = if (0xD800..0xDC00).contains(&hi) {
                    // The parser has checked that a low surrogate follows.
                    chars.next();
                    chars.next();
                    let lo = hex4(&mut chars);
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn hex4(chars: &mut std::str::Chars<'_>) -> u32 {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next().and_then(|c| c.to_digit(16)).unwrap_or(0);
    }
    v
}

/// What kind of syntax failure stopped the parser; lets callers tell an
/// event cut short (more lines may complete it) from trailing data (maybe
/// newline-delimited events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The input ended inside a value.
    Incomplete,
    /// A complete value was followed by more non-whitespace.
    Trailing,
    /// Anything else.
    Other,
}

/// Parses one JSON document within `limits`.
pub fn parse<'a>(input: &'a str, limits: &Limits) -> Result<Value<'a>, Error> {
    parse_detailed(input, limits).map_err(|(e, _)| e)
}

/// Parses bytes that should be UTF-8 JSON; invalid UTF-8 is an
/// `invalid_json` error at the first bad byte.
pub fn parse_bytes<'a>(input: &'a [u8], limits: &Limits) -> Result<Value<'a>, Error> {
    let text = utf8(input, limits)?;
    parse(text, limits)
}

/// Checks size and UTF-8.
pub fn utf8<'a>(input: &'a [u8], limits: &Limits) -> Result<&'a str, Error> {
    check_size(input.len(), limits)?;
    std::str::from_utf8(input).map_err(|e| {
        let at = e.valid_up_to();
        let (line, column) = line_column(&input[..at]);
        Error::new(ErrorCode::InvalidJson, "", "the input is not valid UTF-8")
            .at_position(line, column)
    })
}

pub(crate) fn check_size(len: usize, limits: &Limits) -> Result<(), Error> {
    if len > limits.max_bytes {
        return Err(Error::new(
            ErrorCode::TooLarge,
            "",
            format!("the event is {len} bytes; the limit is {} bytes", limits.max_bytes),
        ));
    }
    Ok(())
}

/// Like [`parse`], and also says what kind of failure stopped it.
pub fn parse_detailed<'a>(input: &'a str, limits: &Limits) -> Result<Value<'a>, (Error, Failure)> {
    check_size(input.len(), limits).map_err(|e| (e, Failure::Other))?;
    let mut parser = Parser { src: input, bytes: input.as_bytes(), pos: 0, max_depth: limits.max_depth };
    let result = parser.skip_ws().and_then(|_| parser.value(0)).and_then(|value| {
        parser.skip_ws()?;
        if parser.pos < parser.bytes.len() {
            return Err(parser.fail(Failure::Trailing, ErrorCode::InvalidJson, "unexpected data after the end of the JSON value"));
        }
        Ok(value)
    });
    result.map_err(|f| f.finish(input))
}

/// A failure on its way up the parser's stack, collecting its path.
struct Fail {
    code: ErrorCode,
    failure: Failure,
    message: String,
    pos: usize,
    /// Innermost first.
    path: Vec<Segment>,
}

impl Fail {
    fn inside(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    fn finish(self, input: &str) -> (Error, Failure) {
        let (line, column) = line_column(&input.as_bytes()[..self.pos.min(input.len())]);
        let path = path::render(self.path.iter().rev());
        (Error::new(self.code, path, self.message).at_position(line, column), self.failure)
    }
}

/// How many bytes at the start of `bytes` a string takes as they are: up to
/// the first `"`, `\` or control character. Eight bytes at a time, so that
/// long strings (a big event's text) cost little more than a copy: a byte of
/// `x` is zero when `(x - 0x01…01) & !x & 0x80…80` flags it, and the lowest
/// flag is always a true one (a borrow only runs upwards).
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let found = zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) | below_space;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + bytes[i..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(bytes.len() - i)
}

/// 1-based line and column (in characters) of the end of `before`.
fn line_column(before: &[u8]) -> (u32, u32) {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = before[line_start..].iter().filter(|&&b| (b & 0xC0) != 0x80).count() + 1;
    (line as u32, column as u32)
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
}

type PResult<T> = Result<T, Fail>;

impl<'a> Parser<'a> {
    fn fail(&self, failure: Failure, code: ErrorCode, message: impl Into<String>) -> Fail {
        Fail { code, failure, message: message.into(), pos: self.pos, path: Vec::new() }
    }

    fn syntax(&self, expected: &str) -> Fail {
        match self.bytes.get(self.pos) {
            None => self.fail(Failure::Incomplete, ErrorCode::InvalidJson, format!("unexpected end of input; expected {expected}")),
            Some(_) => {
                let found = self.src[self.pos..].chars().next().unwrap_or('?');
                self.fail(Failure::Other, ErrorCode::InvalidJson, format!("expected {expected}, found {}", crate::escape::quoted_char(found)))
            }
        }
    }

    fn skip_ws(&mut self) -> PResult<()> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> PResult<Value<'a>> {
        match self.bytes.get(self.pos) {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            _ => Err(self.syntax("a JSON value")),
        }
    }

    fn literal(&mut self, word: &'static str, value: Value<'a>) -> PResult<Value<'a>> {
        let rest = &self.bytes[self.pos..];
        if rest.starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else if word.as_bytes().starts_with(rest) {
            self.pos = self.bytes.len();
            Err(self.syntax(word))
        } else {
            Err(self.syntax("a JSON value"))
        }
    }

    fn enter(&self, depth: usize) -> PResult<()> {
        if depth > self.max_depth {
            return Err(self.fail(
                Failure::Other,
                ErrorCode::TooLarge,
                format!("arrays and objects nest deeper than {} levels", self.max_depth),
            ));
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> PResult<Value<'a>> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws()?;
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            let index = items.len();
            let item = self.value(depth).map_err(|f| f.inside(Segment::Index(index)))?;
            items.push(item);
            self.skip_ws()?;
            match self.bytes.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws()?;
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.syntax("',' or ']' after an array item").inside(Segment::Index(index))),
            }
        }
    }

    fn object(&mut self, depth: usize) -> PResult<Value<'a>> {
        self.enter(depth)?;
        self.pos += 1;
        let mut members: Vec<(Str<'a>, Value<'a>)> = Vec::new();
        // Decoded keys, kept once the object is large enough for a linear
        // scan to hurt.
        let mut seen: Option<HashSet<String>> = None;
        self.skip_ws()?;
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.syntax("a member name in double quotes"));
            }
            let key_pos = self.pos;
            let key = self.string()?;
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.text().into_owned()),
                None => {
                    let dup = members.iter().any(|(k, _)| same_key(k, &key));
                    if members.len() >= 16 {
                        let mut set: HashSet<String> = members.iter().map(|(k, _)| k.text().into_owned()).collect();
                        set.insert(key.text().into_owned());
                        seen = Some(set);
                    }
                    dup
                }
            };
            let segment = || Segment::Key(key.text().into_owned());
            if duplicate {
                let text = key.text();
                let mut fail = self.fail(
                    Failure::Other,
                    ErrorCode::DuplicateKey,
                    format!("the key {} appears more than once in the same object", quoted(&text)),
                );
                fail.pos = key_pos;
                return Err(fail.inside(segment()));
            }
            self.skip_ws()?;
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.syntax("':' after a member name").inside(segment()));
            }
            self.pos += 1;
            self.skip_ws()?;
            let value = self.value(depth).map_err(|f| f.inside(segment()))?;
            self.skip_ws()?;
            match self.bytes.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws()?;
                    members.push((key, value));
                }
                Some(b'}') => {
                    self.pos += 1;
                    members.push((key, value));
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.syntax("',' or '}' after an object member").inside(segment())),
            }
        }
    }

    /// Reads a string starting at its opening quote; checks escapes and
    /// control characters; returns the raw text between the quotes.
    fn string(&mut self) -> PResult<Str<'a>> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos += plain_run(&self.bytes[self.pos..]);
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.syntax("'\"' to close the string"));
            };
            match b {
                b'"' => {
                    let raw = &self.src[start..self.pos];
                    self.pos += 1;
                    return Ok(Str { raw: Cow::Borrowed(raw), escaped });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0x00..=0x1f => {
                    return Err(self.fail(
                        Failure::Other,
                        ErrorCode::InvalidJson,
                        format!("control character U+{b:04X} must be escaped inside a string"),
                    ))
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Checks one escape sequence starting at its backslash.
    fn escape(&mut self) -> PResult<()> {
        self.pos += 1;
        match self.bytes.get(self.pos) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                let hi = self.hex4()?;
                if (0xDC00..0xE000).contains(&hi) {
                    return Err(self.fail(Failure::Other, ErrorCode::InvalidJson, "unpaired low surrogate in a \\u escape"));
                }
                if (0xD800..0xDC00).contains(&hi) {
                    if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                        if self.pos + 2 > self.bytes.len() {
                            return Err(self.syntax("a low surrogate escape"));
                        }
                        return Err(self.fail(Failure::Other, ErrorCode::InvalidJson, "unpaired high surrogate in a \\u escape"));
                    }
                    self.pos += 1;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.fail(Failure::Other, ErrorCode::InvalidJson, "unpaired high surrogate in a \\u escape"));
                    }
                }
                Ok(())
            }
            None => Err(self.syntax("an escape sequence")),
            Some(_) => Err(self.syntax("a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)")),
        }
    }

    /// Reads `uXXXX` with `pos` on the `u`.
    fn hex4(&mut self) -> PResult<u32> {
        self.pos += 1;
        let mut v = 0u32;
        for _ in 0..4 {
            match self.bytes.get(self.pos).and_then(|b| (*b as char).to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => return Err(self.syntax("four hex digits after \\u")),
            }
        }
        Ok(v)
    }

    fn number(&mut self) -> PResult<Value<'a>> {
        let start = self.pos;
        if self.bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("a digit")),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.syntax("a digit after the decimal point"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
                return Err(self.syntax("a digit in the exponent"));
            }
            self.digits();
        }
        Ok(Value::Number(Cow::Borrowed(&self.src[start..self.pos])))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }
}

fn same_key(a: &Str<'_>, b: &Str<'_>) -> bool {
    if !a.escaped && !b.escaped {
        a.raw == b.raw
    } else {
        a.text() == b.text()
    }
}

fn quoted(text: &str) -> String {
    let mut out = String::new();
    write_str_escaped(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_run_stops_where_a_byte_by_byte_scan_does() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(b.len());
        // Every stop byte and some bytes that are not, at every position of
        // two words and a tail, after plain ASCII and after UTF-8 bytes.
        for stop in [b'"', b'\\', 0x00, 0x0a, 0x1f] {
            for plain in [b'x', b' ', 0x7f, 0x80, 0xc3, 0xff, b'!', b'#', b'[', b']'] {
                for len in 0..20 {
                    for at in 0..=len {
                        let mut bytes = vec![plain; len];
                        if at < len {
                            bytes[at] = stop;
                        }
                        assert_eq!(plain_run(&bytes), naive(&bytes), "stop {stop:#x} at {at} in {len} bytes of {plain:#x}");
                    }
                }
            }
        }
        // Two stops: the first one counts.
        assert_eq!(plain_run(b"abcdefg\\hij\"klmnop"), 7);
        assert_eq!(plain_run(b"abcdefghij\x01k\"lmnop"), 10);
    }

    fn roundtrip(input: &str) -> String {
        parse(input, &Limits::default()).unwrap().to_json()
    }

    #[test]
    fn keeps_numbers_strings_and_order_exactly() {
        let cases = [
            (r#"{"b":1.10,"a":9007199254740993}"#, r#"{"b":1.10,"a":9007199254740993}"#),
            (r#" { "x" : [ 1e5 , -0 , 2E-3 ] } "#, r#"{"x":[1e5,-0,2E-3]}"#),
            (r#"{"s":"caf\u00e9 \"q\" \n"}"#, r#"{"s":"caf\u00e9 \"q\" \n"}"#),
            (r#"{"e":"😀\ud83d\ude00"}"#, r#"{"e":"😀\ud83d\ude00"}"#),
            ("[true,false,null,{},[]]", "[true,false,null,{},[]]"),
        ];
        for (input, expected) in cases {
            assert_eq!(roundtrip(input), expected, "input {input}");
        }
    }

    #[test]
    fn decodes_strings_for_comparison() {
        let v = parse(r#"{"t\u0079pe":"a\"b\ud83d\ude00"}"#, &Limits::default()).unwrap();
        assert_eq!(v.get("type").unwrap().as_str().unwrap().text(), "a\"b😀");
    }

    #[test]
    fn syntax_errors_have_line_column_and_path() {
        let cases: &[(&str, &str, Option<(u32, u32)>)] = &[
            ("{\"a\":1,}", "", Some((1, 8))),
            ("{\"data\":{\"x\":tru}}", "data.x", Some((1, 14))),
            ("{\n  \"a\": [1, 2,, 3]\n}", "a[2]", Some((2, 14))),
            ("{\"a\":1} x", "", Some((1, 9))),
            ("{\"a\":\"\u{1}\"}", "a", Some((1, 7))),
            ("{\"a\":01}", "a", Some((1, 7))),
            ("", "", Some((1, 1))),
        ];
        for &(input, path, position) in cases {
            let err = parse(input, &Limits::default()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidJson, "input {input:?}: {err}");
            assert_eq!(err.path(), path, "input {input:?}: {err}");
            assert_eq!(err.position(), position, "input {input:?}: {err}");
            assert!(err.to_string().contains("(line "), "{err}");
        }
    }

    #[test]
    fn failure_kinds() {
        let kind = |s| parse_detailed(s, &Limits::default()).unwrap_err().1;
        assert_eq!(kind("{\"a\":"), Failure::Incomplete);
        assert_eq!(kind("{\"a\":\"xy"), Failure::Incomplete);
        assert_eq!(kind("{\"a\":tr"), Failure::Incomplete);
        assert_eq!(kind("{} {}"), Failure::Trailing);
        assert_eq!(kind("{]"), Failure::Other);
    }

    #[test]
    fn duplicate_keys_are_refused_even_when_escaped_or_many() {
        let err = parse(r#"{"token":"a","tok\u0065n":"b"}"#, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::DuplicateKey);
        assert_eq!(err.path(), "token");
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let input = format!("{{\"data\":{{{},\"k7\":0}}}}", many.join(","));
        let err = parse(&input, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::DuplicateKey);
        assert_eq!(err.path(), "data.k7");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits { max_bytes: 10, max_depth: 3 };
        assert_eq!(parse("[1,2,3,4,5,6]", &limits).unwrap_err().code(), ErrorCode::TooLarge);
        assert_eq!(parse("[[[1]]]", &limits).unwrap().to_json(), "[[[1]]]");
        let err = parse("[[[[1]]]]", &limits).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TooLarge);
        assert_eq!(err.path(), "[0][0][0]");
        let deep = "[".repeat(100_000);
        let err = parse(&deep, &Limits { max_bytes: usize::MAX, max_depth: 64 }).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TooLarge);
    }

    #[test]
    fn invalid_utf8_is_invalid_json_with_position() {
        let err = parse_bytes(b"{\"a\":\n\"\xff\"}", &Limits::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidJson);
        assert_eq!(err.position(), Some((2, 2)));
    }

    #[test]
    fn pretty_keeps_tokens() {
        let v = parse(r#"{"a":[1.10,{}],"b":{"c":"x\ny"},"d":[]}"#, &Limits::default()).unwrap();
        assert_eq!(v.to_pretty_json(), "{\n  \"a\": [\n    1.10,\n    {}\n  ],\n  \"b\": {\n    \"c\": \"x\\ny\"\n  },\n  \"d\": []\n}");
    }

    #[test]
    fn escaping_plain_text() {
        assert_eq!(Str::new("a\"b\\c\n\u{1}").raw(), "a\\\"b\\\\c\\n\\u0001");
        assert!(Str::new("a\"b").eq_text("a\"b"));
    }
}
