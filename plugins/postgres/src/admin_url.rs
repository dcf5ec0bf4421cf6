//! The admin connection URL, `postgres://user[:password]@host[:port][/database]`, as
//! libpq writes it (percent-encoded user and password), with libpq's `require_auth`
//! parameter for the login methods the server may ask for.

/// A parsed admin URL. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminUrl {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    /// The database to connect to for administration (default `postgres`).
    pub database: String,
    /// The login methods the server may ask for (`require_auth`).
    pub methods: LoginMethods,
}

/// The password login methods a server may ask for, as libpq's `require_auth` lists them
/// (`password`, `md5`, `scram-sha-256`; a list of `!method` allows all but those).
/// Without `require_auth`, a clear-text password is sent only to a server on loopback:
/// anything else on the path would read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginMethods {
    pub clear_text: bool,
    pub md5: bool,
    pub scram: bool,
}

/// A password login method, by libpq's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    ClearText,
    Md5,
    Scram,
}

impl LoginMethod {
    const ALL: [Self; 3] = [Self::ClearText, Self::Md5, Self::Scram];

    /// The name `require_auth` and PostgreSQL's `pg_hba.conf` give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClearText => "password",
            Self::Md5 => "md5",
            Self::Scram => "scram-sha-256",
        }
    }
}

impl LoginMethods {
    /// Whether the server may ask for `method`.
    pub fn allows(&self, method: LoginMethod) -> bool {
        match method {
            LoginMethod::ClearText => self.clear_text,
            LoginMethod::Md5 => self.md5,
            LoginMethod::Scram => self.scram,
        }
    }

    fn flag(&mut self, method: LoginMethod) -> &mut bool {
        match method {
            LoginMethod::ClearText => &mut self.clear_text,
            LoginMethod::Md5 => &mut self.md5,
            LoginMethod::Scram => &mut self.scram,
        }
    }

    /// The methods allowed without `require_auth`, for a server at `host`.
    fn default_for(host: &str) -> Self {
        Self {
            clear_text: is_loopback(host),
            md5: true,
            scram: true,
        }
    }

    /// libpq's `require_auth` value.
    fn parse(value: &str) -> Result<Self, String> {
        let entries: Vec<&str> = value.split(',').map(str::trim).collect();
        let negated = entries.iter().all(|e| e.starts_with('!'));
        if !negated && entries.iter().any(|e| e.starts_with('!')) {
            return Err("require_auth mixes methods and !methods; write one kind".into());
        }
        let mut methods = Self {
            clear_text: negated,
            md5: negated,
            scram: negated,
        };
        for entry in entries {
            let name = entry.trim_start_matches('!');
            let method = LoginMethod::ALL
                .into_iter()
                .find(|method| method.name() == name)
                .ok_or_else(|| {
                    format!(
                        "require_auth={name} is not supported; this action logs in with password, md5 or scram-sha-256"
                    )
                })?;
            *methods.flag(method) = !negated;
        }
        Ok(methods)
    }
}

/// Whether `host` is this machine, where a clear-text password crosses no network.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

impl std::fmt::Debug for AdminUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminUrl")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("methods", &self.methods)
            .finish()
    }
}

impl AdminUrl {
    /// Parses the URL; the error never contains the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or("it must start with postgres:// or postgresql://")?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut require_auth = None;
        for parameter in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match (key, value) {
                ("sslmode", "disable" | "allow" | "prefer") => {}
                ("sslmode", other) => {
                    return Err(format!(
                        "sslmode={other} needs TLS, which this action does not speak yet: use sslmode=disable on a network you trust"
                    ));
                }
                ("require_auth", value) => {
                    require_auth = Some(LoginMethods::parse(&decode(value)?)?)
                }
                ("application_name" | "connect_timeout", _) => {}
                (other, _) => return Err(format!("the parameter '{other}' is not supported")),
            }
        }
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host_port) = authority
            .rsplit_once('@')
            .ok_or("it names no user: write postgres://user:password@host:port/database")?;
        let (user, password) = match credentials.split_once(':') {
            Some((user, password)) => (user, Some(decode(password)?)),
            None => (credentials, None),
        };
        let user = decode(user)?;
        if user.is_empty() {
            return Err("it names no user".into());
        }
        // `[v6]:port`, `[v6]`, `host:port` or `host`.
        let (host, port) = match host_port.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or("its IPv6 address lacks a closing ]")?;
                (host, after.strip_prefix(':'))
            }
            None => match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            },
        };
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| format!("'{port}' is not a port number"))?,
            None => 5432,
        };
        if host.is_empty() {
            return Err("it names no host".into());
        }
        let database = decode(database)?;
        let methods = require_auth.unwrap_or_else(|| LoginMethods::default_for(host));
        Ok(Self {
            methods,
            user,
            password,
            host: host.to_owned(),
            port,
            database: if database.is_empty() {
                "postgres".to_owned()
            } else {
                database
            },
        })
    }
}

/// Percent-decoding; `Err` on a malformed escape (without echoing the text, which may
/// be a password).
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("it has a malformed %-escape")?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape in it is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let url = AdminUrl::parse("postgres://admin:p%40ss@db.internal:6543/ops?sslmode=disable")
            .unwrap();
        assert_eq!(url.user, "admin");
        assert_eq!(url.password.as_deref(), Some("p@ss"));
        assert_eq!((url.host.as_str(), url.port), ("db.internal", 6543));
        assert_eq!(url.database, "ops");

        let url = AdminUrl::parse("postgresql://postgres@127.0.0.1").unwrap();
        assert_eq!(
            (url.port, url.password, url.database.as_str()),
            (5432, None, "postgres")
        );
    }

    #[test]
    fn clear_text_passwords_go_only_to_loopback_unless_require_auth_allows_them() {
        let methods = |url: &str| AdminUrl::parse(url).unwrap().methods;
        for local in ["127.0.0.1", "localhost", "[::1]:5433"] {
            assert!(
                methods(&format!("postgres://u:p@{local}")).clear_text,
                "{local}"
            );
        }
        let remote = methods("postgres://u:p@db.internal");
        assert_eq!(
            (remote.clear_text, remote.md5, remote.scram),
            (false, true, true)
        );
        let allowed = methods("postgres://u:p@db.internal?require_auth=password,scram-sha-256");
        assert_eq!(
            (allowed.clear_text, allowed.md5, allowed.scram),
            (true, false, true)
        );
        let all_but_md5 = methods("postgres://u:p@db.internal?require_auth=!md5");
        assert_eq!(
            (all_but_md5.clear_text, all_but_md5.md5, all_but_md5.scram),
            (true, false, true)
        );
        let err = AdminUrl::parse("postgres://u:p@x?require_auth=gss").unwrap_err();
        assert!(err.contains("require_auth=gss"), "{err}");
    }

    #[test]
    fn errors_explain_and_never_show_the_password() {
        let err = AdminUrl::parse("mysql://root:hunter2@x").unwrap_err();
        assert!(err.contains("postgres://") && !err.contains("hunter2"));
        let err = AdminUrl::parse("postgres://u:hunter2@x:notaport/db").unwrap_err();
        assert!(err.contains("port") && !err.contains("hunter2"), "{err}");
        let err = AdminUrl::parse("postgres://u:pw@x/db?sslmode=require").unwrap_err();
        assert!(err.contains("TLS"));
        let debug = format!("{:?}", AdminUrl::parse("postgres://u:hunter2@x").unwrap());
        assert!(!debug.contains("hunter2"));
    }
}
