//! The two pattern languages of grants and requests: HTTP origins and TCP peers.

use std::net::{IpAddr, SocketAddr};

use super::network::IpNet;
use crate::error::{Error, Result};

/// `scheme://host[:port]`. The host may be `*` (any), `*.example.com` (any subdomain) or
/// exact; the port may be `*` (any) and defaults to the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Subdomain(String),
    Exact(String),
}

impl OriginPattern {
    /// Parses a pattern; the error names the pattern and what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self> {
        let invalid = |message: &str| Error::InvalidGrant {
            grant: pattern.to_owned(),
            message: message.to_owned(),
        };
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(invalid("an origin has no path"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| invalid("malformed host"))?;
        let port = match port {
            None => Some(default_port),
            Some("*") => None,
            Some(p) => Some(
                p.parse()
                    .map_err(|_| invalid("the port must be a number or *"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::Subdomain(format!(".{domain}"))
        } else if host.is_empty() || host.contains('*') {
            return Err(invalid(
                "`*` may only stand for the whole host or its leftmost labels",
            ));
        } else {
            HostPattern::Exact(host)
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` matches.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.scheme.eq_ignore_ascii_case(scheme)
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
                HostPattern::Exact(exact) => {
                    exact.trim_start_matches('[').trim_end_matches(']') == host
                }
            }
    }

    /// Whether the pattern names its host as an IP address (an explicit grant of that
    /// address, internal or not).
    pub fn names_ip_literal(&self) -> bool {
        match &self.host {
            HostPattern::Exact(h) => h
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok(),
            _ => false,
        }
    }
}

/// `ip:port`, `ip/prefix:port`, `*:port` or `name:port`, with `*` for any port. IPv6 in
/// brackets. Only a pattern naming a host name lets the guest look that name up (`*`
/// does not: a lookup of any name would be a channel out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPattern {
    host: PeerHost,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PeerHost {
    Any,
    Network(IpNet),
    /// A DNS name, lower case, without a trailing dot.
    Name(String),
}

impl PeerPattern {
    /// Parses a pattern; the error names the pattern and what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Self> {
        let invalid = |message: &str| Error::InvalidGrant {
            grant: pattern.to_owned(),
            message: message.to_owned(),
        };
        let (host, port) = split_host_port(pattern)
            .ok_or_else(|| invalid("expected ip:port, ip/prefix:port, name:port or *:port"))?;
        let port = match port {
            Some("*") => None,
            Some(p) => Some(
                p.parse()
                    .map_err(|_| invalid("the port must be a number or *"))?,
            ),
            None => return Err(invalid("a port (or *) is required")),
        };
        let host = if host == "*" {
            PeerHost::Any
        } else if is_dns_name(host) && host.parse::<IpNet>().is_err() {
            PeerHost::Name(normalize_name(host))
        } else {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            PeerHost::Network(host.parse::<IpNet>().map_err(|m| invalid(&m))?)
        };
        Ok(Self { host, port })
    }

    /// Whether a connection to `addr` matches (a name pattern matches no address: the
    /// addresses its name resolved to during the step are allowed instead).
    pub fn matches(&self, addr: SocketAddr) -> bool {
        self.port.is_none_or(|p| p == addr.port())
            && match &self.host {
                PeerHost::Any => true,
                PeerHost::Network(network) => network.contains(addr.ip()),
                PeerHost::Name(_) => false,
            }
    }

    /// Whether the pattern names the host name `name`; then the port it allows (`None`:
    /// any).
    pub fn names(&self, name: &str) -> Option<Option<u16>> {
        match &self.host {
            PeerHost::Name(n) if *n == normalize_name(name) => Some(self.port),
            _ => None,
        }
    }
}

/// Letters, digits, `-` and `.`, with at least one letter: a host name, not a number.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && host.chars().any(|c| c.is_ascii_alphabetic())
        && host
            .trim_end_matches('.')
            .split('.')
            .all(|label| !label.is_empty())
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Splits `host[:port]`, where an IPv6 host is in brackets (`[::1]:80`).
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        return match &rest[end + 1..] {
            "" => Some((host, None)),
            tail => Some((host, Some(tail.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        // An IPv6 network without brackets, e.g. `::1/128` has no port.
        Some((host, _)) if host.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
        None => Some((s, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_defaults_port_by_scheme() {
        let p = OriginPattern::parse("https://api.github.com").unwrap();
        assert!(p.matches("https", "api.github.com", 443));
        assert!(!p.matches("https", "api.github.com", 444));
        assert!(p.matches("HTTPS", "API.GitHub.com", 443));
    }

    #[test]
    fn origin_wildcards() {
        let any = OriginPattern::parse("http://*:*").unwrap();
        assert!(any.matches("http", "example.org", 1234));
        assert!(!any.matches("https", "example.org", 1234));
        let sub = OriginPattern::parse("https://*.example.com").unwrap();
        assert!(sub.matches("https", "a.b.example.com", 443));
        assert!(!sub.matches("https", "example.com", 443));
        assert!(!sub.matches("https", "badexample.com", 443));
    }

    #[test]
    fn origin_rejects_malformed() {
        for bad in [
            "example.com",
            "ftp://x",
            "https://x/path",
            "https://a*b.com",
            "https://x:port",
        ] {
            assert!(
                OriginPattern::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn origin_ipv6() {
        let p = OriginPattern::parse("http://[::1]:8080").unwrap();
        assert!(p.matches("http", "[::1]", 8080));
        assert!(p.matches("http", "::1", 8080));
        assert!(p.names_ip_literal());
    }

    #[test]
    fn peer_patterns() {
        let exact = PeerPattern::parse("127.0.0.1:5432").unwrap();
        assert!(exact.matches("127.0.0.1:5432".parse().unwrap()));
        assert!(!exact.matches("127.0.0.2:5432".parse().unwrap()));
        let net = PeerPattern::parse("10.0.0.0/8:*").unwrap();
        assert!(net.matches("10.9.8.7:1".parse().unwrap()));
        assert!(!net.matches("11.0.0.1:1".parse().unwrap()));
        let any_host = PeerPattern::parse("*:5432").unwrap();
        assert!(any_host.matches("[::1]:5432".parse().unwrap()));
        let v6 = PeerPattern::parse("[::1]:22").unwrap();
        assert!(v6.matches("[::1]:22".parse().unwrap()));
        let name = PeerPattern::parse("DB.internal:5432").unwrap();
        assert_eq!(name.names("db.internal."), Some(Some(5432)));
        assert_eq!(name.names("other.internal"), None);
        assert!(!name.matches("10.0.0.5:5432".parse().unwrap()));
        assert_eq!(
            any_host.names("db.internal"),
            None,
            "* grants no name lookup"
        );
        for bad in [
            "127.0.0.1",
            "x y:1",
            "a..b:1",
            "1.2.3.4:http",
            "::1",
            "db_1:5",
        ] {
            assert!(PeerPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
