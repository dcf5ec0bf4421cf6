//! `backend.database`: the client and connection forms Backstage accepts, their checks,
//! and the URL the store connects to.

use std::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::lenient::optional_number;
use crate::parse::{KeyError, key_path};

/// `backend.database`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, expecting = "a mapping")]
pub struct DatabaseConfig {
    /// `backend.database.client`, default `better-sqlite3`.
    pub client: DatabaseClient,
    /// `backend.database.connection`; checked against `client` when loading.
    /// Absent means a SQLite file in the data directory (required for `pg`).
    pub connection: Option<DatabaseConnection>,
}

/// The database driver Backstage names in `backend.database.client`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum DatabaseClient {
    #[default]
    #[serde(rename = "better-sqlite3")]
    BetterSqlite3,
    #[serde(rename = "sqlite3")]
    Sqlite3,
    #[serde(rename = "pg")]
    Pg,
}

/// `backend.database.connection`, in the forms Backstage accepts.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConnection {
    /// `":memory:"` (SQLite).
    Memory,
    /// A string: a file path for SQLite, a `postgres://` URL for `pg`.
    String(String),
    /// `{ directory }` (SQLite): the database is `<directory>/scaffolder.sqlite`, as
    /// Backstage names a plugin's file.
    Directory(PathBuf),
    /// `{ filename }` (SQLite).
    Filename(PathBuf),
    /// `{ host, port, user, password, database }` (`pg`); the URL defaults to
    /// `localhost:5432` and the database `backstage_plugin_scaffolder`.
    Postgres {
        host: Option<String>,
        port: Option<u16>,
        user: Option<String>,
        password: Option<String>,
        database: Option<String>,
    },
}

/// The SQLite file name under the data directory or `connection.directory`.
pub const SQLITE_FILE_NAME: &str = "scaffolder.sqlite";
/// The PostgreSQL database name when none is configured: Backstage's
/// `backstage_plugin_<pluginId>`.
pub const DEFAULT_POSTGRES_DATABASE: &str = "backstage_plugin_scaffolder";

impl DatabaseConfig {
    /// The URL `scaffolder_store::Store::connect` takes: `sqlite://<path>` (by default
    /// `<data_dir>/scaffolder.sqlite`), `sqlite::memory:` for `":memory:"`, or
    /// `postgres://user:password@host:port/database` with the user and password
    /// percent-encoded.
    pub fn database_url(&self, data_dir: &Path) -> String {
        match &self.connection {
            None => sqlite_url(&data_dir.join(SQLITE_FILE_NAME)),
            Some(DatabaseConnection::Memory) => "sqlite::memory:".to_owned(),
            Some(DatabaseConnection::String(url)) if self.client == DatabaseClient::Pg => {
                url.clone()
            }
            Some(DatabaseConnection::String(path)) => sqlite_url(Path::new(path)),
            Some(DatabaseConnection::Directory(dir)) => sqlite_url(&dir.join(SQLITE_FILE_NAME)),
            Some(DatabaseConnection::Filename(file)) => sqlite_url(file),
            Some(DatabaseConnection::Postgres {
                host,
                port,
                user,
                password,
                database,
            }) => postgres_url(
                host.as_deref(),
                *port,
                user.as_deref(),
                password.as_deref(),
                database.as_deref(),
            ),
        }
    }
}

pub(crate) fn check_database(database: &DatabaseConfig) -> Result<(), KeyError> {
    let path = || key_path(&["backend", "database", "connection"]);
    let client = database.client.name();
    let message = match (&database.connection, database.client) {
        (None, DatabaseClient::Pg) => Some(
            "required when backend.database.client is pg: a postgres:// URL or { host, port, user, password, database }"
                .to_owned(),
        ),
        (Some(DatabaseConnection::String(url)), DatabaseClient::Pg) if !is_postgres_url(url) => {
            Some("expected a postgres:// URL for client pg".to_owned())
        }
        (
            Some(
                DatabaseConnection::Memory
                | DatabaseConnection::Directory(_)
                | DatabaseConnection::Filename(_),
            ),
            DatabaseClient::Pg,
        ) => Some(
            "`:memory:`, directory and filename are SQLite settings; client pg needs a postgres:// URL or { host, port, user, password, database }"
                .to_owned(),
        ),
        (
            Some(DatabaseConnection::String(url)),
            DatabaseClient::BetterSqlite3 | DatabaseClient::Sqlite3,
        ) if is_postgres_url(url) => Some(format!(
            "a PostgreSQL URL, but backend.database.client is {client}: set the client to pg"
        )),
        (Some(DatabaseConnection::Postgres { .. }), DatabaseClient::BetterSqlite3 | DatabaseClient::Sqlite3) => {
            Some(format!(
                "host, port, user, password and database are PostgreSQL settings, but backend.database.client is {client}: set the client to pg, or give SQLite `:memory:`, a file path, {{ directory }} or {{ filename }}"
            ))
        }
        _ => None,
    };
    match message {
        Some(message) => Err(KeyError {
            path: path(),
            message,
        }),
        None => Ok(()),
    }
}

impl DatabaseClient {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::BetterSqlite3 => "better-sqlite3",
            Self::Sqlite3 => "sqlite3",
            Self::Pg => "pg",
        }
    }
}

pub(crate) fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub(crate) fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// RFC 3986 unreserved characters stay; everything else in a user name, password or
/// database name is percent-encoded.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn postgres_url(
    host: Option<&str>,
    port: Option<u16>,
    user: Option<&str>,
    password: Option<&str>,
    database: Option<&str>,
) -> String {
    let mut url = String::from("postgres://");
    if user.is_some() || password.is_some() {
        url.extend(utf8_percent_encode(user.unwrap_or(""), URL_COMPONENT));
        if let Some(password) = password {
            url.push(':');
            url.extend(utf8_percent_encode(password, URL_COMPONENT));
        }
        url.push('@');
    }
    let host = host.unwrap_or("localhost");
    if host.contains(':') && !host.starts_with('[') {
        url.push_str(&format!("[{host}]"));
    } else {
        url.push_str(host);
    }
    url.push_str(&format!(":{}/", port.unwrap_or(5432)));
    url.extend(utf8_percent_encode(
        database.unwrap_or(DEFAULT_POSTGRES_DATABASE),
        URL_COMPONENT,
    ));
    url
}

impl<'de> Deserialize<'de> for DatabaseConnection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Fields {
            directory: Option<PathBuf>,
            filename: Option<PathBuf>,
            host: Option<String>,
            #[serde(deserialize_with = "optional_number")]
            port: Option<u16>,
            user: Option<String>,
            password: Option<String>,
            database: Option<String>,
        }

        struct ConnectionVisitor;
        impl<'de> Visitor<'de> for ConnectionVisitor {
            type Value = DatabaseConnection;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "`:memory:`, a file path, a postgres:// URL, { directory }, { filename } or { host, port, user, password, database }",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<DatabaseConnection, E> {
                Ok(if text == ":memory:" {
                    DatabaseConnection::Memory
                } else {
                    DatabaseConnection::String(text.to_owned())
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DatabaseConnection, A::Error> {
                let f = Fields::deserialize(MapAccessDeserializer::new(map))?;
                let postgres = f.host.is_some()
                    || f.port.is_some()
                    || f.user.is_some()
                    || f.password.is_some()
                    || f.database.is_some();
                match (f.directory, f.filename) {
                    (Some(_), _) | (_, Some(_)) if postgres => Err(de::Error::custom(
                        "directory and filename (SQLite) cannot be mixed with host, port, user, password and database (PostgreSQL)",
                    )),
                    (Some(_), Some(_)) => Err(de::Error::custom(
                        "set either directory or filename, not both",
                    )),
                    (Some(directory), None) => Ok(DatabaseConnection::Directory(directory)),
                    (None, Some(filename)) => Ok(DatabaseConnection::Filename(filename)),
                    (None, None) => Ok(DatabaseConnection::Postgres {
                        host: f.host,
                        port: f.port,
                        user: f.user,
                        password: f.password,
                        database: f.database,
                    }),
                }
            }
        }
        deserializer.deserialize_any(ConnectionVisitor)
    }
}
