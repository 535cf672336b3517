//! JSON paths as they appear in error messages: `data.conversationId`,
//! `[2].orgId`, `data["odd key"]`.

/// One step from a container to a child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Renders segments listed from the outermost to the innermost.
pub(crate) fn render<'s>(segments: impl IntoIterator<Item = &'s Segment>) -> String {
    let mut out = String::new();
    for segment in segments {
        push(&mut out, segment);
    }
    out
}

fn push(out: &mut String, segment: &Segment) {
    match segment {
        Segment::Index(i) => {
            out.push('[');
            out.push_str(&i.to_string());
            out.push(']');
        }
        Segment::Key(key) if is_plain(key) => {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
        Segment::Key(key) => {
            out.push('[');
            crate::escape::write_str_escaped(out, key);
            out.push(']');
        }
    }
}

/// The path of `key` inside the object at `parent`.
pub(crate) fn key(parent: &str, key: &str) -> String {
    let mut out = parent.to_owned();
    push(&mut out, &Segment::Key(key.to_owned()));
    out
}

/// `inner` seen from a container at `outer`.
pub(crate) fn join(outer: &str, inner: &str) -> String {
    if outer.is_empty() {
        inner.to_owned()
    } else if inner.is_empty() {
        outer.to_owned()
    } else if inner.starts_with('[') {
        format!("{outer}{inner}")
    } else {
        format!("{outer}.{inner}")
    }
}

/// Keys that read unambiguously after a dot.
fn is_plain(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_indices_and_odd_keys() {
        let segments = [
            Segment::Index(2),
            Segment::Key("data".into()),
            Segment::Key("a.b".into()),
            Segment::Key("conversationId".into()),
        ];
        assert_eq!(render(&segments), r#"[2].data["a.b"].conversationId"#);
        assert_eq!(render(&[Segment::Key("data".into())]), "data");
        assert_eq!(join("[3]", "data.status"), "[3].data.status");
        assert_eq!(join("[3]", ""), "[3]");
        assert_eq!(join("", "orgId"), "orgId");
        assert_eq!(key("data", "lastUpdated"), "data.lastUpdated");
    }
}
