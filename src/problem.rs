//! A configuration problem, named by the variable (and the place inside it)
//! at fault. Its own module so that the configuration and the parts it reads
//! (destinations) share it without importing each other.

use std::fmt;

/// One thing wrong with the configuration: `MAX_BODY_BYTES: expected …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The variable (and path inside it) at fault, e.g. `DESTINATIONS[1].url`.
    pub field: String,
    pub message: String,
    /// Whether it stops the bridge from accepting webhooks. A problem that
    /// only turns an optional part off (a too-short `ADMIN_TOKEN`) does not.
    pub blocking: bool,
}

impl Problem {
    /// A problem that stops the bridge from accepting webhooks.
    pub fn blocking(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { field: field.into(), message: message.into(), blocking: true }
    }

    /// A problem that leaves webhooks flowing.
    pub fn notice(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { field: field.into(), message: message.into(), blocking: false }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

