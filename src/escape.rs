//! JSON string escaping, shared by the reader's writer ([`crate::json`]),
//! error messages ([`crate::error`]) and paths: a leaf module, so that none
//! of those needs another just to quote a string.

/// Writes `text` as a JSON string literal, quotes included.
pub fn write_str_escaped(out: &mut String, text: &str) {
    out.push('"');
    escape_into(out, text);
    out.push('"');
}

/// `text` quoted for a message, as JSON writes a string (`"a\"b"`): the
/// same as Rust's `{:?}` for ordinary text, without its formatting code in
/// the wasm.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    write_str_escaped(&mut out, text);
    out
}

/// A character quoted for a message: `'x'`, or its code point when it does
/// not print (`'\u{7}'`).
pub fn quoted_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() && c != ' ' {
        format!("'\\u{{{:x}}}'", c as u32)
    } else {
        format!("'{c}'")
    }
}

pub(crate) fn escape_into(out: &mut String, text: &str) {
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(&text[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => out.push_str(&format!("\\u{b:04x}")),
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

