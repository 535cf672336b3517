//! A destination's URL: read as the runtime's `fetch` reads it
//! ([`check_url`]), and the hosts an app may not be at.

/// A URL as a WHATWG URL parser reads it: what [`check_url`] needs of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The normalised URL, what gets fetched.
    pub href: String,
    /// Without the `:`, lower case.
    pub scheme: String,
    /// A user name or a password is present.
    pub credentials: bool,
    /// The host as serialised: a domain, an IPv4 address, or an IPv6 address
    /// in brackets; empty when there is none.
    pub hostname: String,
}

/// A WHATWG URL parser: an error says why the text is not an absolute URL.
/// Natively (the CLI, the tests) it is [`parse_url`], the `url` crate; the
/// Worker passes the runtime's own `URL`, the parser its `fetch` uses, which
/// keeps about 50 KB of parser and IDNA tables out of its wasm.
pub type UrlParser = fn(&str) -> Result<ParsedUrl, String>;

/// [`UrlParser`] over the `url` crate.
#[cfg(not(target_arch = "wasm32"))]
pub fn parse_url(text: &str) -> Result<ParsedUrl, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    Ok(ParsedUrl {
        scheme: url.scheme().to_string(),
        credentials: !url.username().is_empty() || url.password().is_some(),
        hostname: url.host_str().unwrap_or("").to_string(),
        href: url.into(),
    })
}

/// Reads a destination URL the way the runtime's `fetch` will (WHATWG URL
/// parsing, by `parse_url`), and answers its normalised form, which is what
/// gets fetched. https anywhere; plain http only for loopback hosts.
/// Refused: credentials in the URL, backslashes (a WHATWG parser reads `\\`
/// as `/`, so `http://evil.example\\@localhost/` is evil.example, not
/// localhost), control characters, and characters outside ASCII (write the
/// host in punycode and percent-encode the rest), so that every parser reads
/// the same URL.
pub(crate) fn check_url(text: &str, parse_url: UrlParser) -> Result<String, String> {
    if text.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    if text.contains('\\') {
        return Err("contains a backslash; URL parsers read it as '/', so the host may not be what it seems".into());
    }
    if !text.is_ascii() {
        return Err("contains a character outside ASCII; write the host in punycode (xn--…) and percent-encode the rest".into());
    }
    let url = parse_url(text).map_err(|e| format!("{} is not an absolute URL ({e})", crate::escape::quoted(text)))?;
    if url.credentials {
        return Err("must not carry a user name or password; use signingSecret or tokenSecret instead".into());
    }
    if url.hostname.is_empty() {
        return Err(format!("{} has no host", crate::escape::quoted(text)));
    }
    match url.scheme.as_str() {
        "https" => Ok(url.href),
        "http" if is_loopback(&url.hostname) => Ok(url.href),
        "http" => Err("must be https (plain http only for loopback: localhost, 127.0.0.0/8, [::1])".into()),
        other => Err(format!("scheme {} is not supported; must be https", crate::escape::quoted(other))),
    }
}

/// A serialised host (see [`ParsedUrl::hostname`]: lower case, IPv6 in
/// brackets) that is this machine: `localhost`, `*.localhost`, 127.0.0.0/8
/// or `[::1]`.
pub fn is_loopback(hostname: &str) -> bool {
    if let Some(v6) = hostname.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok_and(|a| a.is_loopback());
    }
    if let Ok(v4) = hostname.parse::<std::net::Ipv4Addr>() {
        return v4.is_loopback();
    }
    hostname == "localhost" || hostname.ends_with(".localhost")
}

/// Why an app managed at runtime may not be at `hostname` (a serialised
/// host, see [`ParsedUrl::hostname`]), if it may not: an address that is not
/// on the internet (private, shared, link-local, unique-local, multicast,
/// reserved), or loopback, unless `allow_loopback` (local development).
/// Only literal addresses and `localhost` names are judged: names are not
/// resolved here, and a Worker's `fetch` reaches no private network by name.
pub fn refuse_address(hostname: &str, allow_loopback: bool) -> Option<String> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    fn v4(a: Ipv4Addr) -> Option<&'static str> {
        let [b0, b1, b2, _] = a.octets();
        Some(match () {
            () if a.is_loopback() => "loopback",
            () if a.is_private() => "private",
            () if a.is_link_local() => "link-local",
            () if b0 == 0 => "this-network",
            () if b0 == 100 && (64..128).contains(&b1) => "shared (carrier-grade NAT)",
            () if b0 == 192 && b1 == 0 && b2 == 0 => "IETF-reserved",
            () if b0 == 198 && (b1 == 18 || b1 == 19) => "benchmarking",
            () if a.is_documentation() => "documentation",
            () if a.is_multicast() => "multicast",
            () if b0 >= 240 => "reserved",
            () => return None,
        })
    }
    let class = if let Some(text) = hostname.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let Ok(a) = text.parse::<Ipv6Addr>() else { return Some(format!("{hostname} is not an IPv6 address")) };
        let s = a.segments();
        if let Some(mapped) = a.to_ipv4_mapped() {
            v4(mapped)
        } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
            // NAT64: the IPv4 address in its last 32 bits.
            v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
        } else {
            match () {
                () if a.is_loopback() => Some("loopback"),
                () if a.is_unspecified() => Some("unspecified"),
                () if s[0] & 0xfe00 == 0xfc00 => Some("unique-local"),
                () if s[0] & 0xffc0 == 0xfe80 => Some("link-local"),
                () if a.is_multicast() => Some("multicast"),
                () if s[0] == 0x2001 && s[1] == 0x0db8 => Some("documentation"),
                () => None,
            }
        }
    } else if let Ok(a) = hostname.parse::<Ipv4Addr>() {
        v4(a)
    } else if hostname == "localhost" || hostname.ends_with(".localhost") {
        Some("loopback")
    } else {
        None
    }?;
    if class == "loopback" && allow_loopback {
        return None;
    }
    let hint = if class == "loopback" { " (allowed only with LOCAL_DEVELOPMENT=1, for a bridge run by `make dev`)" } else { "" };
    Some(format!("{hostname} is a {class} address, not on the internet; an app managed at runtime must be reachable there{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_fetch_reads_them() {
        // (input, Ok(normalised URL) or Err(start of the message))
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://example.com", Ok("https://example.com/")),
            ("HTTPS://Example.COM/hook?x=1", Ok("https://example.com/hook?x=1")),
            ("http://localhost:8080/x", Ok("http://localhost:8080/x")),
            ("http://a.localhost/", Ok("http://a.localhost/")),
            ("http://127.0.0.1/x", Ok("http://127.0.0.1/x")),
            ("http://127.1/x", Ok("http://127.0.0.1/x")),
            ("http://0x7f.0.0.1/x", Ok("http://127.0.0.1/x")),
            ("http://[::1]:9/x", Ok("http://[::1]:9/x")),
            // A hand-written check took these for loopback; fetch goes to evil.example.
            ("http://evil.example\\@localhost/", Err("contains a backslash")),
            ("http://evil.example\\.localhost/", Err("contains a backslash")),
            ("http://localhost@evil.example/", Err("must not carry a user name or password")),
            ("https://user:pass@example.com/", Err("must not carry a user name or password")),
            ("http://example.com", Err("must be https")),
            ("http://127.0.0.1.evil.com/", Err("must be https")),
            ("http://localhost.evil.com/", Err("must be https")),
            ("http://[::ffff:127.0.0.1]/", Err("must be https")),
            ("https://exa\tmple.com/", Err("contains a control character")),
            ("https://example.com/\n", Err("contains a control character")),
            ("https://bücher.example/", Err("contains a character outside ASCII")),
            ("https://example.com/caf\u{e9}", Err("contains a character outside ASCII")),
            ("file:///etc/passwd", Err("\"file:///etc/passwd\" has no host")),
            ("ftp://a.example/", Err("scheme \"ftp\" is not supported")),
            ("example.com", Err("\"example.com\" is not an absolute URL")),
            ("https://", Err("\"https://\" is not an absolute URL")),
        ];
        for (input, expected) in cases {
            match (check_url(input, parse_url), expected) {
                (Ok(url), Ok(want)) => assert_eq!(&url, want, "{input}"),
                (Err(message), Err(want)) => assert!(message.starts_with(want), "{input}: {message}"),
                (got, _) => panic!("{input}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}
