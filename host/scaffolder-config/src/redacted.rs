//! `Debug` for every configuration type that holds a secret: whether it is set shows, its
//! value never does. One place to check that nothing secret reaches a log line.

use std::collections::BTreeMap;
use std::fmt;

use crate::{CatalogConfig, DatabaseConnection, DefaultEnvironment, Integration, S3Settings};

/// Shows whether a secret is set, never its value.
pub(crate) fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integration")
            .field("host", &self.host)
            .field("api_base_url", &self.api_base_url)
            .field("token", &redacted(&self.token))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl fmt::Debug for DatabaseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            // A URL may carry a password between `://` and `@`.
            Self::String(text) => match (text.find("://"), text.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let shown = format!("{}<redacted>{}", &text[..scheme + 3], &text[at..]);
                    f.debug_tuple("String").field(&shown).finish()
                }
                _ => f.debug_tuple("String").field(text).finish(),
            },
            Self::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
            Self::Filename(file) => f.debug_tuple("Filename").field(file).finish(),
            Self::Postgres {
                host,
                port,
                user,
                password,
                database,
            } => f
                .debug_struct("Postgres")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .field("password", &redacted(password))
                .field("database", database)
                .finish(),
        }
    }
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogConfig")
            .field("token", &redacted(&self.token))
            .finish()
    }
}

impl fmt::Debug for DefaultEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets: BTreeMap<&str, &str> = self
            .secrets
            .keys()
            .map(|k| (k.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("DefaultEnvironment")
            .field("parameters", &self.parameters)
            .field("secrets", &secrets)
            .finish()
    }
}
