//! How one delivery attempt ended, in words for the log: the status
//! decides what happens next (the delivery log's [`crate::delivery::log`]
//! and the breaker's [`crate::delivery::breaker::Signal`]); the answer's body
//! is only a clue, read by whoever made the request (the entry, or
//! `drift-bridge listen`) up to [`EXCERPT_BYTES`] within the attempt's
//! deadline.

/// How much of an app's answer is read, at most, for the log.
pub const EXCERPT_BYTES: usize = 4096;
/// How much of it is kept in `last_error`.
const EXCERPT_CHARS: usize = 200;

/// How an attempt ended, as the one who made the request saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The app answered `code`. Redirects are answers too: they are never
    /// followed (that would re-send a signed body wherever they point).
    Status { code: u16, location: Option<String>, excerpt: String },
    /// No answer: a network error, or no status within the deadline.
    Nothing(String),
}

impl Outcome {
    /// The HTTP status, when there was one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Outcome::Status { code, .. } => Some(*code),
            Outcome::Nothing(_) => None,
        }
    }

    /// The attempt's error in words, for `last_error` and the log; `None`
    /// for a success.
    pub fn error(&self) -> Option<String> {
        match self {
            Outcome::Status { code: 200..=299, .. } => None,
            Outcome::Status { code: code @ 300..=399, location, .. } => Some(match location {
                Some(to) => format!("the app redirected ({code}) to {}; redirects are not followed", clip(to)),
                None => format!("the app redirected ({code}) without a Location; redirects are not followed"),
            }),
            Outcome::Status { code, excerpt, .. } => {
                let excerpt = clip(excerpt);
                Some(if excerpt.is_empty() { format!("the app answered {code}") } else { format!("the app answered {code}: {excerpt}") })
            }
            Outcome::Nothing(why) => Some(why.clone()),
        }
    }
}

/// At most [`EXCERPT_CHARS`] characters of `text`, on one line, printable.
fn clip(text: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if out.chars().count() >= EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Outcome {
        Outcome::Status { code, location: None, excerpt: String::new() }
    }

    #[test]
    fn errors_say_what_happened() {
        let cases = [
            (status(200), None),
            (status(500), Some("the app answered 500")),
            (
                Outcome::Status { code: 503, location: None, excerpt: "  upstream\n\tdown  ".into() },
                Some("the app answered 503: upstream down"),
            ),
            (
                Outcome::Status { code: 307, location: Some("http://evil.example/x".into()), excerpt: String::new() },
                Some("the app redirected (307) to http://evil.example/x; redirects are not followed"),
            ),
            (
                Outcome::Status { code: 301, location: None, excerpt: String::new() },
                Some("the app redirected (301) without a Location; redirects are not followed"),
            ),
            (Outcome::Nothing("network error: refused".into()), Some("network error: refused")),
        ];
        for (answer, expected) in cases {
            assert_eq!(answer.error().as_deref(), expected, "{answer:?}");
        }
        let long = Outcome::Status { code: 500, location: None, excerpt: "x".repeat(5000) };
        assert_eq!(long.error().unwrap().chars().count(), "the app answered 500: ".len() + 200 + 1);
    }
}
