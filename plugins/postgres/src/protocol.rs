//! The client side of PostgreSQL's frontend/backend protocol (version 3.0), enough for
//! administration: start-up, password login and simple queries whose results are text.
//! The messages, SCRAM-SHA-256 (with SASLprep) and MD5 come from `postgres-protocol`
//! (rust-postgres' pure protocol crate); this module owns the socket and the order of
//! the conversation, and sends a password only by a method the admin URL allows
//! (`LoginMethods`).

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::{DataRowBody, ErrorResponseBody, Message};
use postgres_protocol::message::frontend;

use crate::admin_url::{AdminUrl, LoginMethod};

/// The longest message accepted from the server.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// What went wrong talking to the server.
#[derive(Debug)]
pub enum Error {
    /// The server could not be reached or the connection broke.
    Io(String),
    /// The server answered with an `ErrorResponse`.
    Server(ServerError),
    /// The server said something this client does not understand, or asked for a login
    /// method it may not use.
    Protocol(String),
}

/// The fields of an `ErrorResponse` worth showing.
#[derive(Debug, Default, Clone)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(message) | Error::Protocol(message) => f.write_str(message),
            Error::Server(e) => {
                write!(f, "{} (SQLSTATE {})", e.message, e.code)?;
                if let Some(detail) = &e.detail {
                    write!(f, "; {detail}")?;
                }
                if let Some(hint) = &e.hint {
                    write!(f, "; hint: {hint}")?;
                }
                Ok(())
            }
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

/// An authenticated session, ready for queries.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read from the server and not yet parsed.
    received: BytesMut,
}

impl Connection {
    /// Connects to `url`'s server as its user, to `database`.
    pub fn connect(url: &AdminUrl, database: &str) -> Result<Self> {
        let address = format!("{}:{}", url.host, url.port);
        let stream = TcpStream::connect(&address).map_err(|err| {
            Error::Io(format!(
                "could not connect to PostgreSQL at {address}: {err}"
            ))
        })?;
        let mut connection = Self {
            stream,
            received: BytesMut::new(),
        };
        connection.start_up(url, database)?;
        Ok(connection)
    }

    fn start_up(&mut self, url: &AdminUrl, database: &str) -> Result<()> {
        let mut out = BytesMut::new();
        frontend::startup_message(
            [
                ("user", url.user.as_str()),
                ("database", database),
                ("application_name", "scaffolder postgres:database:create"),
                ("client_encoding", "UTF8"),
            ],
            &mut out,
        )
        .map_err(io)?;
        self.send(&mut out)?;

        let mut scram: Option<ScramSha256> = None;
        loop {
            match self.receive()? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    let password = password(url, LoginMethod::ClearText)?;
                    frontend::password_message(password.as_bytes(), &mut out).map_err(io)?;
                    self.send(&mut out)?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let password = password(url, LoginMethod::Md5)?;
                    let hash = md5_hash(url.user.as_bytes(), password.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut out).map_err(io)?;
                    self.send(&mut out)?;
                }
                Message::AuthenticationSasl(body) => {
                    let mechanisms: Vec<&str> = body.mechanisms().collect().map_err(io)?;
                    if !mechanisms.contains(&SCRAM_SHA_256) {
                        return Err(protocol(format!(
                            "the server offers only SASL mechanisms {mechanisms:?}; this client speaks {SCRAM_SHA_256}"
                        )));
                    }
                    let password = password(url, LoginMethod::Scram)?;
                    let client =
                        ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, client.message(), &mut out)
                        .map_err(io)?;
                    self.send(&mut out)?;
                    scram = Some(client);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let client = scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL continue before start"))?;
                    client.update(body.data()).map_err(scram_error)?;
                    frontend::sasl_response(client.message(), &mut out).map_err(io)?;
                    self.send(&mut out)?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let client = scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL final before start"))?;
                    client.finish(body.data()).map_err(scram_error)?;
                }
                Message::ErrorResponse(body) => return Err(Error::Server(server_error(&body))),
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ParameterStatus(_)
                | Message::BackendKeyData(_)
                | Message::NoticeResponse(_) => {}
                Message::AuthenticationGss
                | Message::AuthenticationGssContinue(_)
                | Message::AuthenticationKerberosV5
                | Message::AuthenticationScmCredential
                | Message::AuthenticationSspi => {
                    return Err(protocol(
                        "the server asks for a login method this client does not support (use password, md5 or scram-sha-256)",
                    ));
                }
                _ => return Err(protocol("unexpected message during start-up")),
            }
        }
    }

    /// Runs one statement with the simple query protocol; returns the rows as text
    /// (`None` for SQL NULL).
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(io)?;
        self.send(&mut out)?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            match self.receive()? {
                Message::DataRow(body) => rows.push(row(&body)?),
                Message::ErrorResponse(body) => failure = Some(server_error(&body)),
                Message::ReadyForQuery(_) => break,
                Message::RowDescription(_)
                | Message::CommandComplete(_)
                | Message::EmptyQueryResponse
                | Message::NoticeResponse(_)
                | Message::ParameterStatus(_) => {}
                _ => return Err(protocol("unexpected message after a query")),
            }
        }
        match failure {
            Some(error) => Err(Error::Server(error)),
            None => Ok(rows),
        }
    }

    /// Says goodbye; the server closes the connection.
    pub fn close(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.send(&mut out);
    }

    fn send(&mut self, out: &mut BytesMut) -> Result<()> {
        let frame = out.split();
        self.stream.write_all(&frame).map_err(io)
    }

    fn receive(&mut self) -> Result<Message> {
        loop {
            if let Some(message) = Message::parse(&mut self.received).map_err(io)? {
                return Ok(message);
            }
            if let Some(length) = self.received.get(1..5) {
                let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]);
                if length as usize > MAX_MESSAGE_BYTES {
                    return Err(protocol(format!("bad message length {length}")));
                }
            }
            let mut chunk = [0; 8192];
            let read = self.stream.read(&mut chunk).map_err(io)?;
            if read == 0 {
                return Err(Error::Io(
                    "the connection to PostgreSQL failed: the server closed it".to_owned(),
                ));
            }
            self.received.extend_from_slice(&chunk[..read]);
        }
    }
}

/// The admin URL's password, for a login `method` the URL allows.
fn password(url: &AdminUrl, method: LoginMethod) -> Result<&str> {
    if !url.methods.allows(method) {
        let why = if method == LoginMethod::ClearText {
            format!(
                "which would send the password in clear text to {}; let the server use scram-sha-256, or add require_auth=password to the admin URL if the network to it is trusted",
                url.host
            )
        } else {
            "which the admin URL's require_auth does not list".to_owned()
        };
        return Err(protocol(format!(
            "the server asks for '{}' authentication, {why}",
            method.name()
        )));
    }
    url.password.as_deref().ok_or_else(|| {
        protocol(format!(
            "the server wants a password for '{}', but the admin URL has none",
            url.user
        ))
    })
}

fn io(err: std::io::Error) -> Error {
    Error::Io(format!("the connection to PostgreSQL failed: {err}"))
}

fn protocol(message: impl Into<String>) -> Error {
    Error::Protocol(message.into())
}

fn scram_error(err: std::io::Error) -> Error {
    protocol(format!("the SCRAM-SHA-256 login failed: {err}"))
}

/// A `DataRow`'s columns as text.
fn row(body: &DataRowBody) -> Result<Vec<Option<String>>> {
    let buffer = body.buffer();
    body.ranges()
        .map(|range| Ok(range.map(|range| String::from_utf8_lossy(&buffer[range]).into_owned())))
        .collect()
        .map_err(io)
}

/// The fields of an `ErrorResponse` worth showing.
fn server_error(body: &ErrorResponseBody) -> ServerError {
    let mut error = ServerError::default();
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A server on loopback that answers a start-up with `login` (a message asking for a
    /// password), then with success and one query's row and error; returns what the client
    /// sent as its password message, if it sent one.
    fn serve_once(login: Vec<u8>) -> (u16, std::thread::JoinHandle<Option<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut length = [0; 4];
            stream.read_exact(&mut length).unwrap();
            let mut startup = vec![0; u32::from_be_bytes(length) as usize - 4];
            stream.read_exact(&mut startup).unwrap();
            stream.write_all(&login).unwrap();
            let mut header = [0; 5];
            if stream.read_exact(&mut header).is_err() {
                return None;
            }
            let length = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
            let mut answer = vec![0; length - 4];
            stream.read_exact(&mut answer).unwrap();
            let mut reply = message(b'R', &0i32.to_be_bytes());
            reply.extend(message(b'Z', b"I"));
            stream.write_all(&reply).unwrap();
            let mut query = [0; 5];
            stream.read_exact(&mut query).unwrap();
            let mut sql = vec![0; u32::from_be_bytes(query[1..5].try_into().unwrap()) as usize - 4];
            stream.read_exact(&mut sql).unwrap();
            let mut row = 2i16.to_be_bytes().to_vec();
            row.extend(2i32.to_be_bytes());
            row.extend(b"ok");
            row.extend((-1i32).to_be_bytes());
            let mut reply = message(b'D', &row);
            reply.extend(message(
                b'E',
                b"SERROR\0C42P04\0Mdatabase \"x\" already exists\0\0",
            ));
            reply.extend(message(b'Z', b"I"));
            stream.write_all(&reply).unwrap();
            Some(answer)
        });
        (port, server)
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend(((body.len() + 4) as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn md5_logins_answer_as_libpq_and_queries_return_rows_and_errors() {
        let mut login = 5i32.to_be_bytes().to_vec();
        login.extend([1, 2, 3, 4]);
        let (port, server) = serve_once(message(b'R', &login));
        let url = AdminUrl::parse(&format!("postgres://alice:secret@127.0.0.1:{port}")).unwrap();
        let mut connection = Connection::connect(&url, "postgres").unwrap();
        let err = connection.query("SELECT 1").unwrap_err().to_string();
        assert!(err.contains("already exists (SQLSTATE 42P04)"), "{err}");
        // Computed independently: md5(hex(md5("secret" + "alice")) + salt 01020304).
        assert_eq!(
            server.join().unwrap().unwrap(),
            b"md598a0412b9c31436fc53776e863350083\0"
        );
    }

    #[test]
    fn a_clear_text_password_is_sent_only_where_the_admin_url_allows() {
        let (port, server) = serve_once(message(b'R', &3i32.to_be_bytes()));
        let url = AdminUrl::parse(&format!(
            "postgres://alice:secret@127.0.0.1:{port}?require_auth=scram-sha-256"
        ))
        .unwrap();
        let err = Connection::connect(&url, "postgres")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("'password' authentication") && err.contains("require_auth"),
            "{err}"
        );
        assert_eq!(server.join().unwrap(), None, "no password was sent");

        let (port, server) = serve_once(message(b'R', &3i32.to_be_bytes()));
        let url = AdminUrl::parse(&format!("postgres://alice:secret@127.0.0.1:{port}")).unwrap();
        let mut connection = Connection::connect(&url, "postgres").unwrap();
        let _ = connection.query("SELECT 1");
        assert_eq!(server.join().unwrap().unwrap(), b"secret\0");
    }
}
