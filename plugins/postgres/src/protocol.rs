//! The client side of PostgreSQL's frontend/backend protocol (version 3.0), enough for
//! administration: start-up, password login (SCRAM-SHA-256, MD5 or clear text) and
//! simple queries whose results are text.

use std::io::{Read, Write};
use std::net::TcpStream;

use md5::{Digest, Md5};

use crate::admin_url::AdminUrl;
use crate::scram;

/// What went wrong talking to the server.
#[derive(Debug)]
pub enum Error {
    /// The server could not be reached or the connection broke.
    Io(String),
    /// The server answered with an `ErrorResponse`.
    Server(ServerError),
    /// The server said something this client does not understand.
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

/// One message from the server: its type byte and payload.
struct Message {
    kind: u8,
    body: Vec<u8>,
}

/// An authenticated session, ready for queries.
pub struct Connection {
    stream: TcpStream,
}

impl Connection {
    /// Connects to `url`'s server as its user, to `database`.
    pub fn connect(url: &AdminUrl, database: &str, nonce: impl Fn() -> String) -> Result<Self> {
        let address = format!("{}:{}", url.host, url.port);
        let stream = TcpStream::connect(&address).map_err(|err| {
            Error::Io(format!(
                "could not connect to PostgreSQL at {address}: {err}"
            ))
        })?;
        let mut connection = Self { stream };
        connection.start_up(url, database, nonce)?;
        Ok(connection)
    }

    fn start_up(
        &mut self,
        url: &AdminUrl,
        database: &str,
        nonce: impl Fn() -> String,
    ) -> Result<()> {
        let mut body = Vec::new();
        body.extend_from_slice(&196_608i32.to_be_bytes()); // protocol 3.0
        for (key, value) in [
            ("user", url.user.as_str()),
            ("database", database),
            ("application_name", "scaffolder postgres:database:create"),
            ("client_encoding", "UTF8"),
        ] {
            push_cstring(&mut body, key);
            push_cstring(&mut body, value);
        }
        body.push(0);
        self.send(None, &body)?;

        let mut scram: Option<scram::Client> = None;
        loop {
            let message = self.receive()?;
            match message.kind {
                b'R' => {
                    let (code, rest) = split_i32(&message.body)?;
                    match code {
                        0 => {}
                        3 => {
                            let password = self.password(url)?;
                            let mut body = Vec::new();
                            push_cstring(&mut body, &password);
                            self.send(Some(b'p'), &body)?;
                        }
                        5 => {
                            let salt = rest.get(..4).ok_or_else(|| protocol("short MD5 salt"))?;
                            let answer = md5_password(&url.user, &self.password(url)?, salt);
                            let mut body = Vec::new();
                            push_cstring(&mut body, &answer);
                            self.send(Some(b'p'), &body)?;
                        }
                        10 => {
                            let mechanisms = String::from_utf8_lossy(rest);
                            if !mechanisms.split('\0').any(|m| m == "SCRAM-SHA-256") {
                                return Err(protocol(format!(
                                    "the server offers only SASL mechanisms {mechanisms:?}; this client speaks SCRAM-SHA-256"
                                )));
                            }
                            let client = scram::Client::new(&self.password(url)?, &nonce());
                            let first = client.first_message();
                            let mut body = Vec::new();
                            push_cstring(&mut body, "SCRAM-SHA-256");
                            body.extend_from_slice(&(first.len() as i32).to_be_bytes());
                            body.extend_from_slice(first.as_bytes());
                            self.send(Some(b'p'), &body)?;
                            scram = Some(client);
                        }
                        11 => {
                            let client = scram
                                .as_mut()
                                .ok_or_else(|| protocol("SASL continue before start"))?;
                            let answer = client
                                .final_message(&String::from_utf8_lossy(rest))
                                .map_err(Error::Protocol)?;
                            self.send(Some(b'p'), answer.as_bytes())?;
                        }
                        12 => {
                            let client = scram
                                .as_ref()
                                .ok_or_else(|| protocol("SASL final before start"))?;
                            client
                                .verify_server(&String::from_utf8_lossy(rest))
                                .map_err(Error::Protocol)?;
                        }
                        other => {
                            return Err(protocol(format!(
                                "the server asks for authentication method {other}, which this client does not support (use password, md5 or scram-sha-256)"
                            )));
                        }
                    }
                }
                b'E' => return Err(Error::Server(parse_error(&message.body))),
                b'Z' => return Ok(()),
                // ParameterStatus, BackendKeyData, NoticeResponse.
                b'S' | b'K' | b'N' => {}
                other => {
                    return Err(protocol(format!(
                        "unexpected message '{}' during start-up",
                        other as char
                    )));
                }
            }
        }
    }

    fn password(&self, url: &AdminUrl) -> Result<String> {
        url.password.clone().ok_or_else(|| {
            protocol(format!(
                "the server wants a password for '{}', but the admin URL has none",
                url.user
            ))
        })
    }

    /// Runs one statement with the simple query protocol; returns the rows as text
    /// (`None` for SQL NULL).
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let mut body = Vec::new();
        push_cstring(&mut body, sql);
        self.send(Some(b'Q'), &body)?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            let message = self.receive()?;
            match message.kind {
                b'D' => rows.push(parse_row(&message.body)?),
                b'E' => failure = Some(parse_error(&message.body)),
                b'Z' => break,
                // RowDescription, CommandComplete, EmptyQueryResponse, notices, statuses.
                b'T' | b'C' | b'I' | b'N' | b'S' => {}
                other => {
                    return Err(protocol(format!(
                        "unexpected message '{}' after a query",
                        other as char
                    )));
                }
            }
        }
        match failure {
            Some(error) => Err(Error::Server(error)),
            None => Ok(rows),
        }
    }

    /// Says goodbye; the server closes the connection.
    pub fn close(mut self) {
        let _ = self.send(Some(b'X'), &[]);
    }

    fn send(&mut self, kind: Option<u8>, body: &[u8]) -> Result<()> {
        let mut frame = Vec::with_capacity(body.len() + 5);
        frame.extend(kind);
        frame.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        frame.extend_from_slice(body);
        self.stream.write_all(&frame).map_err(io)
    }

    fn receive(&mut self) -> Result<Message> {
        let mut header = [0; 5];
        self.stream.read_exact(&mut header).map_err(io)?;
        let length = i32::from_be_bytes(header[1..5].try_into().unwrap());
        let length = usize::try_from(length - 4)
            .ok()
            .filter(|l| *l < 64 << 20)
            .ok_or_else(|| protocol(format!("bad message length {length}")))?;
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).map_err(io)?;
        Ok(Message {
            kind: header[0],
            body,
        })
    }
}

fn io(err: std::io::Error) -> Error {
    Error::Io(format!("the connection to PostgreSQL failed: {err}"))
}

fn protocol(message: impl Into<String>) -> Error {
    Error::Protocol(message.into())
}

fn push_cstring(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

fn split_i32(body: &[u8]) -> Result<(i32, &[u8])> {
    let head = body.get(..4).ok_or_else(|| protocol("short message"))?;
    Ok((i32::from_be_bytes(head.try_into().unwrap()), &body[4..]))
}

fn split_i16(body: &[u8]) -> Result<(i16, &[u8])> {
    let head = body.get(..2).ok_or_else(|| protocol("short message"))?;
    Ok((i16::from_be_bytes(head.try_into().unwrap()), &body[2..]))
}

/// `DataRow`: a count, then each column's length (-1 for NULL) and bytes.
fn parse_row(body: &[u8]) -> Result<Vec<Option<String>>> {
    let (count, mut rest) = split_i16(body)?;
    let mut row = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count {
        let (length, after) = split_i32(rest)?;
        if length < 0 {
            row.push(None);
            rest = after;
            continue;
        }
        let length = length as usize;
        let value = after
            .get(..length)
            .ok_or_else(|| protocol("short data row"))?;
        row.push(Some(String::from_utf8_lossy(value).into_owned()));
        rest = &after[length..];
    }
    Ok(row)
}

/// `ErrorResponse`: fields, each a type byte and a string, ended by a zero byte.
fn parse_error(body: &[u8]) -> ServerError {
    let mut error = ServerError::default();
    for field in body.split(|b| *b == 0) {
        let Some((&kind, value)) = field.split_first() else {
            continue;
        };
        let value = String::from_utf8_lossy(value).into_owned();
        match kind {
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    error
}

/// `md5` + md5(md5(password + user) + salt), in hex.
fn md5_password(user: &str, password: &str, salt: &[u8]) -> String {
    let inner = hex(&Md5::digest(format!("{password}{user}")));
    let mut outer = Md5::new();
    outer.update(inner.as_bytes());
    outer.update(salt);
    format!("md5{}", hex(&outer.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_answers_match_libpq() {
        // Computed independently: md5(hex(md5("secret" + "alice")) + salt 01020304).
        assert_eq!(
            md5_password("alice", "secret", &[1, 2, 3, 4]),
            "md598a0412b9c31436fc53776e863350083"
        );
    }

    #[test]
    fn rows_and_errors_parse() {
        let mut body = Vec::new();
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"ok");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(parse_row(&body).unwrap(), [Some("ok".to_owned()), None]);

        let error = parse_error(b"SERROR\0C42P04\0Mdatabase \"x\" already exists\0\0");
        assert_eq!(error.code, "42P04");
        assert_eq!(error.message, "database \"x\" already exists");
    }
}
