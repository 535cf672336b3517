//! Errors that say what went wrong and where.
//!
//! Every error carries a stable machine-readable [`ErrorCode`], the JSON path
//! it refers to (empty for the whole document) and a message written for the
//! person who has to fix the input. Adapters map them to their own surface:
//! an HTTP status in the worker, a stderr line in the CLI, a card in the
//! playground. The codes never change meaning once published.

use std::fmt;

/// The stable code of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The bytes are not JSON (the message gives line and column).
    InvalidJson,
    /// The JSON is well formed but is not a Drift event this bridge can read.
    InvalidEvent,
    /// An object has the same key twice.
    DuplicateKey,
    /// The event is larger, or nested deeper, than the configured limits.
    TooLarge,
}

impl ErrorCode {
    /// The code as it appears in JSON and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::DuplicateKey => "duplicate_key",
            ErrorCode::TooLarge => "too_large",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event was rejected.
///
/// `Display` renders `code at path: message`, for example
/// `invalid_event at data.conversationId: expected an integer, found a string`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    path: String,
    message: String,
    /// 1-based line and column of the offending byte, for syntax errors.
    position: Option<(u32, u32)>,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        Error { code, path: path.into(), message: message.into(), position: None }
    }

    pub(crate) fn at_position(mut self, line: u32, column: u32) -> Self {
        self.position = Some((line, column));
        self
    }

    /// The stable code, for example [`ErrorCode::InvalidEvent`].
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The JSON path the error refers to, such as `data.conversationId` or
    /// `[2].orgId`; empty when it concerns the document as a whole.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, in words (without the code, the path or the position).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message followed by the position of a syntax error, as shown to
    /// people: `expected ',' or '}' after an object member (line 1, column 27)`.
    pub fn detail(&self) -> String {
        match self.position {
            Some((line, column)) => format!("{} (line {line}, column {column})", self.message),
            None => self.message.clone(),
        }
    }

    /// The same error with its line moved down by `lines`, for an event that
    /// starts on line `lines + 1` of a larger input.
    pub fn shifted(mut self, lines: u32) -> Self {
        if let Some((line, column)) = self.position {
            self.position = Some((line.saturating_add(lines), column));
        }
        self
    }

    /// Line and column (1-based) of a syntax error.
    pub fn position(&self) -> Option<(u32, u32)> {
        self.position
    }

    /// The same error, with `prefix` put in front of its path; used when an
    /// event sits inside a batch (`[3]` + `data.status` = `[3].data.status`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.path = crate::path::join(prefix, &self.path);
        self
    }

    /// Renders the error as a JSON object
    /// `{"code":…,"message":…,"path":…}` (plus `line` and `column` for
    /// syntax errors), the shape every adapter returns.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.message.len() + self.path.len());
        out.push_str("{\"code\":\"");
        out.push_str(self.code.as_str());
        out.push_str("\",\"message\":");
        crate::escape::write_str_escaped(&mut out, &self.detail());
        out.push_str(",\"path\":");
        crate::escape::write_str_escaped(&mut out, &self.path);
        if let Some((line, column)) = self.position {
            out.push_str(&format!(",\"line\":{line},\"column\":{column}"));
        }
        out.push('}');
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.code, self.detail())
        } else {
            write!(f, "{} at {}: {}", self.code, self.path, self.detail())
        }
    }
}

impl std::error::Error for Error {}
