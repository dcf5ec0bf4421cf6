//! What a step may reach: an action's request, the operator's grant, and their checked
//! intersection.
//!
//! An action *requests* [`Capabilities`] in its metadata; the operator *grants* a plugin
//! [`Grants`] in configuration. A step gets their intersection, [`EffectiveGrants`]: a
//! secret, HTTP origin or TCP peer is reachable only when both sides allow it. Everything
//! else is denied, and each denial is recorded ([`super::Denials`]) so the step's failure
//! can name it.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::network::{IpNet, is_internal_address};
use super::pattern::{OriginPattern, PeerPattern};
use crate::error::{Error, Result};

/// What an action asks for (the WIT `capabilities` record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    pub outbound_http: Vec<String>,
    pub secrets: Vec<String>,
    pub tcp: Vec<String>,
    pub template_directory: bool,
}

/// What the operator allows a plugin, from configuration. Empty by default: a plugin
/// with no grants gets its workspace and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Grants {
    /// HTTP origins, `scheme://host[:port]` with `*` wildcards.
    pub outbound_http: Vec<String>,
    /// Secret names.
    pub secrets: Vec<String>,
    /// TCP peers, `ip[/prefix]:port`, `*:port`, with `*` for any port.
    pub tcp: Vec<String>,
    /// Whether actions may read the template's directory.
    pub template_directory: bool,
    /// Internal networks (loopback, private, link-local, ...) that HTTP requests to
    /// granted *host names* may reach, as CIDR blocks. A granted IP literal is always
    /// reachable; a name resolving to an internal address is denied unless listed here,
    /// so DNS cannot point an allowed name at an internal service.
    pub internal_networks: Vec<String>,
}

/// The checked intersection of a request and a grant for one step.
#[derive(Debug, Clone, Default)]
pub struct EffectiveGrants {
    requested_http: Vec<OriginPattern>,
    granted_http: Vec<OriginPattern>,
    requested_tcp: Vec<PeerPattern>,
    granted_tcp: Vec<PeerPattern>,
    secrets: Vec<String>,
    template_directory: bool,
    internal_networks: Vec<IpNet>,
}

impl EffectiveGrants {
    /// Intersects an action's request with the operator's grant. Fails on a malformed
    /// pattern on either side, naming it.
    pub fn new(requested: &Capabilities, granted: &Grants) -> Result<Self> {
        Ok(Self {
            requested_http: parse_all(&requested.outbound_http, OriginPattern::parse)?,
            granted_http: parse_all(&granted.outbound_http, OriginPattern::parse)?,
            requested_tcp: parse_all(&requested.tcp, PeerPattern::parse)?,
            granted_tcp: parse_all(&granted.tcp, PeerPattern::parse)?,
            secrets: requested
                .secrets
                .iter()
                .filter(|s| granted.secrets.contains(s))
                .cloned()
                .collect(),
            template_directory: requested.template_directory && granted.template_directory,
            internal_networks: parse_all(&granted.internal_networks, |s| {
                s.parse::<IpNet>().map_err(|message| Error::InvalidGrant {
                    grant: s.to_owned(),
                    message,
                })
            })?,
        })
    }

    /// Whether the step may read the secret `name`.
    pub fn allows_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name)
    }

    /// Whether the step gets the template directory.
    pub fn allows_template_directory(&self) -> bool {
        self.template_directory
    }

    /// Whether the step may open TCP connections at all.
    pub fn allows_any_tcp(&self) -> bool {
        !self.requested_tcp.is_empty() && !self.granted_tcp.is_empty()
    }

    /// Whether the step may connect to `addr`.
    pub fn allows_tcp(&self, addr: SocketAddr) -> bool {
        self.requested_tcp.iter().any(|p| p.matches(addr))
            && self.granted_tcp.iter().any(|p| p.matches(addr))
    }

    /// The ports a step may reach at the addresses of `name`, when both the action and the
    /// operator name it in a TCP peer pattern (`name:port`); `None` when the step may not
    /// even look it up. `None` in the list: any port.
    pub fn name_lookup_ports(&self, name: &str) -> Option<Vec<Option<u16>>> {
        let mut ports = Vec::new();
        for requested in self.requested_tcp.iter().filter_map(|p| p.names(name)) {
            for granted in self.granted_tcp.iter().filter_map(|p| p.names(name)) {
                match (requested, granted) {
                    (None, port) | (port, None) => ports.push(port),
                    (Some(a), Some(b)) if a == b => ports.push(Some(a)),
                    _ => {}
                }
            }
        }
        (!ports.is_empty()).then_some(ports)
    }

    /// Whether an address a granted name resolved to may be used: internal addresses
    /// only through the operator's `internalNetworks`, as for HTTP.
    pub fn allows_resolved(&self, ip: IpAddr) -> bool {
        !is_internal_address(ip) || self.internal_networks.iter().any(|n| n.contains(ip))
    }

    /// Checks an HTTP origin before any lookup: `Ok` with whether the grant names the
    /// host as an IP literal, `Err` with the reason it is denied.
    pub fn check_origin(&self, scheme: &str, host: &str, port: u16) -> Result<bool, String> {
        let origin = format!("{scheme}://{host}:{port}");
        if !self
            .requested_http
            .iter()
            .any(|p| p.matches(scheme, host, port))
        {
            return Err(format!(
                "outbound HTTP to {origin} denied: the action did not request it"
            ));
        }
        let Some(granted) = self
            .granted_http
            .iter()
            .find(|p| p.matches(scheme, host, port))
        else {
            return Err(format!(
                "outbound HTTP to {origin} denied: it is not granted to this plugin"
            ));
        };
        Ok(granted.names_ip_literal())
    }

    /// Checks one resolved address of an HTTP origin whose host is a name: internal
    /// addresses are reachable only through the operator's `internalNetworks`.
    pub fn check_resolved(&self, origin: &str, ip: IpAddr) -> Result<(), String> {
        if is_internal_address(ip) && !self.internal_networks.iter().any(|n| n.contains(ip)) {
            return Err(format!(
                "outbound HTTP to {origin} denied: the name resolves to {ip}, an internal address that is not granted"
            ));
        }
        Ok(())
    }
}

fn parse_all<T>(items: &[String], parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    items.iter().map(|s| parse(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(http: &[&str], tcp: &[&str]) -> Grants {
        Grants {
            outbound_http: http.iter().map(|s| s.to_string()).collect(),
            tcp: tcp.iter().map(|s| s.to_string()).collect(),
            ..Grants::default()
        }
    }

    fn request(http: &[&str], tcp: &[&str]) -> Capabilities {
        Capabilities {
            outbound_http: http.iter().map(|s| s.to_string()).collect(),
            tcp: tcp.iter().map(|s| s.to_string()).collect(),
            ..Capabilities::default()
        }
    }

    #[test]
    fn origin_is_denied_when_only_one_side_allows_it() {
        let only_requested =
            EffectiveGrants::new(&request(&["https://*"], &[]), &grants(&[], &[])).unwrap();
        let err = only_requested
            .check_origin("https", "api.github.com", 443)
            .unwrap_err();
        assert!(err.contains("not granted"), "{err}");

        let only_granted =
            EffectiveGrants::new(&request(&[], &[]), &grants(&["https://*"], &[])).unwrap();
        let err = only_granted
            .check_origin("https", "api.github.com", 443)
            .unwrap_err();
        assert!(err.contains("did not request"), "{err}");
    }

    #[test]
    fn origin_is_allowed_when_both_sides_match() {
        let g = EffectiveGrants::new(
            &request(&["https://*"], &[]),
            &grants(&["https://*.github.com"], &[]),
        )
        .unwrap();
        assert_eq!(g.check_origin("https", "api.github.com", 443), Ok(false));
        assert!(g.check_origin("https", "github.com.evil.io", 443).is_err());
        assert!(g.check_origin("http", "api.github.com", 80).is_err());
        assert!(g.check_origin("https", "api.github.com", 8443).is_err());
    }

    #[test]
    fn ip_literal_grant_is_reported() {
        let g = EffectiveGrants::new(
            &request(&["http://*:*"], &[]),
            &grants(&["http://127.0.0.1:*"], &[]),
        )
        .unwrap();
        assert_eq!(g.check_origin("http", "127.0.0.1", 8080), Ok(true));
    }

    #[test]
    fn resolved_internal_address_is_denied_unless_network_granted() {
        let mut granted = grants(&["http://*:*"], &[]);
        let g = EffectiveGrants::new(&request(&["http://*:*"], &[]), &granted).unwrap();
        assert!(
            g.check_resolved("http://localhost:80", "127.0.0.1".parse().unwrap())
                .is_err()
        );
        assert!(
            g.check_resolved("http://x:80", "10.1.2.3".parse().unwrap())
                .is_err()
        );
        assert!(
            g.check_resolved("http://x:80", "169.254.169.254".parse().unwrap())
                .is_err()
        );
        assert!(
            g.check_resolved("http://x:80", "93.184.216.34".parse().unwrap())
                .is_ok()
        );

        granted.internal_networks = vec!["10.0.0.0/8".into()];
        let g = EffectiveGrants::new(&request(&["http://*:*"], &[]), &granted).unwrap();
        assert!(
            g.check_resolved("http://x:80", "10.1.2.3".parse().unwrap())
                .is_ok()
        );
        assert!(
            g.check_resolved("http://x:80", "127.0.0.1".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn tcp_needs_both_sides() {
        let g = EffectiveGrants::new(&request(&[], &["*:5432"]), &grants(&[], &["127.0.0.1:*"]))
            .unwrap();
        assert!(g.allows_tcp("127.0.0.1:5432".parse().unwrap()));
        assert!(!g.allows_tcp("127.0.0.1:22".parse().unwrap()));
        assert!(!g.allows_tcp("10.0.0.1:5432".parse().unwrap()));
    }

    #[test]
    fn name_lookups_need_the_name_on_both_sides() {
        let g = EffectiveGrants::new(
            &request(&[], &["db.internal:*", "*:5432"]),
            &grants(&[], &["DB.internal:5432", "*:*"]),
        )
        .unwrap();
        assert_eq!(g.name_lookup_ports("db.internal"), Some(vec![Some(5432)]));
        assert_eq!(
            g.name_lookup_ports("exfil.example"),
            None,
            "* grants no lookup"
        );
        let only_granted = EffectiveGrants::new(
            &request(&[], &["*:5432"]),
            &grants(&[], &["db.internal:5432"]),
        )
        .unwrap();
        assert_eq!(only_granted.name_lookup_ports("db.internal"), None);
        assert!(!g.allows_resolved("10.0.0.5".parse().unwrap()));
        assert!(g.allows_resolved("93.184.216.34".parse().unwrap()));
    }

    #[test]
    fn secrets_need_both_sides() {
        let g = EffectiveGrants::new(
            &Capabilities {
                secrets: vec!["a".into(), "b".into()],
                ..Capabilities::default()
            },
            &Grants {
                secrets: vec!["b".into(), "c".into()],
                ..Grants::default()
            },
        )
        .unwrap();
        assert!(!g.allows_secret("a"));
        assert!(g.allows_secret("b"));
        assert!(!g.allows_secret("c"));
    }

    #[test]
    fn malformed_grant_names_itself() {
        let err = EffectiveGrants::new(&request(&[], &[]), &grants(&["ftp//x"], &[])).unwrap_err();
        assert!(err.to_string().contains("ftp//x"), "{err}");
    }
}
