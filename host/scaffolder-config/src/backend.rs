//! `backend.*`: where the server listens, its HTTP limits and lifecycle, CORS and the
//! `backend.auth` entries (whose types the API's authenticator owns).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use scaffolder_api::auth::ExternalAccess;
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor};

use crate::database::DatabaseConfig;
use crate::lenient::{boolean, duration, methods, optional_number, strings};

/// `backend.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct BackendConfig {
    /// `backend.lifecycle`.
    pub lifecycle: LifecycleConfig,
    /// `backend.listen`: where the HTTP server binds.
    pub listen: Listen,
    /// `backend.baseUrl`: the URL at which clients reach this server.
    pub base_url: Option<String>,
    /// `backend.database`.
    pub database: DatabaseConfig,
    /// `backend.workingDirectory`: where task workspaces are created (relative to the
    /// current directory, as in Backstage); the system temporary directory when unset.
    pub working_directory: Option<PathBuf>,
    /// `backend.cors`; absent means no CORS headers at all.
    pub cors: Option<Cors>,
    /// `backend.auth`.
    pub auth: AuthConfig,
    /// `backend.server` (ours; Node's `http.Server` settings that Backstage sets in code).
    pub server: ServerConfig,
}

/// `backend.server`: connection timeouts and limits, named after the Node.js `http.Server`
/// properties Backstage's root HTTP router exposes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct ServerConfig {
    /// `backend.server.headersTimeout`: how long a request's headers may take to arrive
    /// (also the longest wait for the next request on a kept-alive connection), default
    /// 60 s as in Node.js.
    #[serde(deserialize_with = "duration")]
    pub headers_timeout: Duration,
    /// `backend.server.requestTimeout`: how long a request's body may take to arrive after
    /// its headers, default 300 s as in Node.js.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// `backend.server.keepAliveTimeout`: an idle connection (no request in progress, no
    /// bytes received) is closed after this long, default 5 s as in Node.js. Event streams
    /// are requests in progress and stay open.
    #[serde(deserialize_with = "duration")]
    pub keep_alive_timeout: Duration,
    /// `backend.server.maxConnections`: open connections beyond this are answered 503 and
    /// closed; default three quarters of the open-file limit.
    pub max_connections: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            headers_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: None,
        }
    }
}

/// `backend.listen`: either `{ host, port }` or a string `"<port>"`, `":<port>"` or
/// `"<host>:<port>"` (`"[<ipv6>]:<port>"` for IPv6). An empty host means the default host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Default `127.0.0.1`.
    pub host: String,
    /// Default 7007.
    pub port: u16,
}

/// The default `backend.listen.host`: loopback only, unlike Backstage's all interfaces.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The default `backend.listen.port`, Backstage's.
pub const DEFAULT_PORT: u16 = 7007;

impl Default for Listen {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
        }
    }
}

/// `backend.lifecycle`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct LifecycleConfig {
    /// `backend.lifecycle.serverShutdownDelay`, as in Backstage: how long the server keeps
    /// answering requests after SIGTERM (readiness answers 503 meanwhile, so a load
    /// balancer stops sending requests first); default none.
    #[serde(deserialize_with = "duration")]
    pub server_shutdown_delay: Duration,
}

/// `backend.cors`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct Cors {
    /// `origin`: one origin or a list; `*` allows any; absent allows none.
    #[serde(rename = "origin", deserialize_with = "strings")]
    pub origins: Vec<String>,
    /// `methods`: a list or a comma-separated string, upper-cased; default
    /// `GET, HEAD, PUT, PATCH, POST, DELETE` (the `cors` package's).
    #[serde(deserialize_with = "methods")]
    pub methods: Vec<String>,
    /// `credentials`: whether to send `Access-Control-Allow-Credentials`.
    #[serde(deserialize_with = "boolean")]
    pub credentials: bool,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            credentials: false,
        }
    }
}

/// `backend.auth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct AuthConfig {
    /// `backend.auth.externalAccess`: callers other than Backstage users.
    pub external_access: Vec<ExternalAccess>,
    /// `backend.auth.dangerouslyDisableDefaultAuthPolicy`: accept unauthenticated requests.
    #[serde(deserialize_with = "boolean")]
    pub dangerously_disable_default_auth_policy: bool,
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Fields {
            host: Option<String>,
            #[serde(deserialize_with = "optional_number")]
            port: Option<u16>,
        }

        struct ListenVisitor;
        impl<'de> Visitor<'de> for ListenVisitor {
            type Value = Listen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`<port>`, `<host>:<port>` or { host, port }")
            }
            fn visit_u64<E: de::Error>(self, port: u64) -> Result<Listen, E> {
                let port = u16::try_from(port)
                    .map_err(|_| E::custom(format!("port {port} is above 65535")))?;
                Ok(Listen {
                    port,
                    ..Listen::default()
                })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Listen, E> {
                parse_listen(text).ok_or_else(|| E::invalid_value(Unexpected::Str(text), &self))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Listen, A::Error> {
                let fields = Fields::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Listen {
                    host: fields
                        .host
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| DEFAULT_HOST.to_owned()),
                    port: fields.port.unwrap_or(DEFAULT_PORT),
                })
            }
        }
        deserializer.deserialize_any(ListenVisitor)
    }
}

/// `7007`, `:7007`, `0.0.0.0:7007`, `[::1]:7007`.
pub(crate) fn parse_listen(text: &str) -> Option<Listen> {
    let (host, port) = match text.trim().rsplit_once(':') {
        Some((host, port)) => (host, port),
        None => ("", text.trim()),
    };
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6,
        None if host.contains(':') => return None,
        None => host,
    };
    Some(Listen {
        host: if host.is_empty() {
            DEFAULT_HOST.to_owned()
        } else {
            host.to_owned()
        },
        port: port.parse().ok()?,
    })
}
