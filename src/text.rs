//! Finding and replacing a text in a text, for the few places of the
//! delivery log that do (a table's SQL, a history line, an app's answer
//! being redacted): byte by byte, rather than by core's two-way searcher,
//! which is about 2.5 KB of the bridge's wasm for texts of at most a few
//! KiB. The results are `str::find`'s, `str::rfind`'s and (for a text not
//! empty) `str::replace`'s.

/// Where `needle` first starts in `haystack`.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    // A match of a whole UTF-8 text starts and ends on character boundaries.
    haystack.as_bytes().windows(needle.len()).position(|w| w == needle.as_bytes())
}

/// Where `needle` last starts in `haystack`.
pub fn rfind(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(haystack.len());
    }
    haystack.as_bytes().windows(needle.len()).rposition(|w| w == needle.as_bytes())
}

pub fn contains(haystack: &str, needle: &str) -> bool {
    find(haystack, needle).is_some()
}

/// `haystack` with every `from` made `to`, left to right (`from` empty:
/// `haystack` as it is, where core would put `to` between characters).
pub fn replace(haystack: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return haystack.to_owned();
    }
    let mut out = String::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = find(rest, from) {
        out.push_str(&rest[..i]);
        out.push_str(to);
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cases() {
        assert_eq!(find("abcabc", "ca"), Some(2));
        assert_eq!(rfind("id.r2.r3", ".r"), Some(5));
        assert_eq!(find("ab", "abc"), None);
        assert_eq!(replace("s3cret and s3cret", "s3cret", "[redacted]"), "[redacted] and [redacted]");
        assert_eq!(replace("aaa", "aa", "b"), "ba");
        assert_eq!(find("é€x", "x"), Some(5));
    }

    proptest! {
        #[test]
        fn as_core_does(h in "[ab€é.r]{0,12}", n in "[ab€é.r]{0,3}", to in "[xy]{0,2}") {
            prop_assert_eq!(find(&h, &n), h.find(n.as_str()));
            prop_assert_eq!(rfind(&h, &n), h.rfind(n.as_str()));
            prop_assert_eq!(contains(&h, &n), h.contains(n.as_str()));
            if !n.is_empty() {
                prop_assert_eq!(replace(&h, &n, &to), h.replace(n.as_str(), &to));
            }
        }
    }
}
