//! A real git server on loopback for the publish tests: `git http-backend` (the smart-HTTP
//! server that ships with git) behind a small HTTP/1.1 front, one thread per connection.
//!
//! Besides the git protocol it serves raw files at `/{owner}/{repo}/raw/branch/{branch}/{path}`,
//! the layout Gitea and Forgejo use, so a Backstage catalog can read a pushed
//! `catalog-info.yaml` through its plain URL reader. Repositories behave like public
//! ones on a git host: anyone may read, and with a token set, pushing needs it (as the
//! password of HTTP basic auth, or as a bearer token).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::http1::{self, Request, response};

/// A running server; stops accepting when dropped (the thread ends with the process).
pub struct GitServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    root: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

impl GitServer {
    /// Serves the repositories under a fresh directory; `token`, when given, is required.
    pub fn start(token: Option<&str>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let server = Front {
            root: root.path().to_owned(),
            token: token.map(str::to_owned),
            log: log.clone(),
        };
        http1::serve(listener, Arc::new(move |request| server.respond(request)));
        Self { base, root, log }
    }

    /// Creates an empty bare repository `owner/name.git`, as a user does on a git host
    /// before pushing to it; returns its clone URL.
    pub fn create_repo(&self, path: &str) -> String {
        init_bare_repo(self.root.path(), path);
        self.url(path)
    }

    /// The directory holding the repositories.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The clone URL of `owner/name`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}.git", self.base)
    }

    /// The clone URL of `owner/name` with `token` as the basic-auth password.
    pub fn url_with_token(&self, path: &str, token: &str) -> String {
        self.url(path)
            .replacen("http://", &format!("http://git:{token}@"), 1)
    }

    /// Clones `owner/name` into `into` with the real git client.
    pub fn clone_into(&self, path: &str, token: Option<&str>, into: &Path) {
        let url = match token {
            Some(token) => self.url_with_token(path, token),
            None => self.url(path),
        };
        let status = Command::new("git")
            .args(["clone", "--quiet", &url])
            .arg(into)
            .status()
            .unwrap();
        assert!(status.success(), "git clone {url} failed");
    }

    /// Pushes the server received for `owner/name` (POSTs to `git-receive-pack`).
    pub fn pushes(&self, path: &str) -> usize {
        let wanted = format!("POST /{path}.git/git-receive-pack");
        self.requests().iter().filter(|r| **r == wanted).count()
    }

    /// Every request so far, as `METHOD /path` (no query).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Creates the empty bare repository `<root>/<path>.git` that accepts pushes, its HEAD on
/// `main`.
pub(crate) fn init_bare_repo(root: &Path, path: &str) {
    let dir = root.join(format!("{path}.git"));
    std::fs::create_dir_all(&dir).unwrap();
    git(
        &dir,
        &["init", "--bare", "--quiet", "--initial-branch=main"],
    );
    git(&dir, &["config", "http.receivepack", "true"]);
}

/// Runs git in `dir` and returns its standard output; panics with its error output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

struct Front {
    root: PathBuf,
    token: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Front {
    fn respond(&self, request: &Request) -> Vec<u8> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method, request.path));
        let pushing = request.path.ends_with("/git-receive-pack")
            || request.query.contains("service=git-receive-pack");
        if pushing && !self.authorized(request) {
            return response(
                "401 Unauthorized",
                &[("www-authenticate", "Basic realm=\"git\"")],
                b"authentication required\n",
            );
        }
        if request.method == "GET"
            && let Some((repo, rest)) = request.path.split_once("/raw/branch/")
            && let Some((branch, file)) = rest.split_once('/')
        {
            return self.raw_file(repo, branch, file);
        }
        self.http_backend(request)
    }

    fn authorized(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(value) = request.header("authorization") else {
            return false;
        };
        if let Some(bearer) = value.strip_prefix("Bearer ") {
            return bearer == token;
        }
        let Some(basic) = value.strip_prefix("Basic ") else {
            return false;
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap_or_default();
        let decoded = String::from_utf8_lossy(&decoded);
        decoded.split_once(':').map(|(_, password)| password) == Some(token.as_str())
    }

    fn raw_file(&self, repo: &str, branch: &str, file: &str) -> Vec<u8> {
        let dir = self
            .root
            .join(format!("{}.git", repo.trim_start_matches('/')));
        let output = Command::new("git")
            .args(["show", &format!("{branch}:{file}")])
            .current_dir(&dir)
            .output();
        match output {
            Ok(output) if dir.is_dir() && output.status.success() => response(
                "200 OK",
                &[("content-type", "text/plain; charset=utf-8")],
                &output.stdout,
            ),
            _ => response("404 Not Found", &[], b"not found\n"),
        }
    }

    /// Runs `git http-backend` as the CGI program it is.
    fn http_backend(&self, request: &Request) -> Vec<u8> {
        let mut command = Command::new("git");
        command
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &request.method)
            .env("PATH_INFO", &request.path)
            .env("QUERY_STRING", &request.query)
            .env("CONTENT_LENGTH", request.body.len().to_string())
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("REMOTE_USER", "scaffolder-tests")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, variable) in [
            ("content-type", "CONTENT_TYPE"),
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
            ("git-protocol", "GIT_PROTOCOL"),
        ] {
            if let Some(value) = request.header(name) {
                command.env(variable, value);
            }
        }
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let body = request.body.clone();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        cgi_response(&output.stdout)
    }
}

/// Turns a CGI program's output (headers, blank line, body) into an HTTP response.
fn cgi_response(output: &[u8]) -> Vec<u8> {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| {
            output
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, i + 2))
        });
    let Some((end, body_start)) = split else {
        return response(
            "502 Bad Gateway",
            &[],
            b"git http-backend gave no headers\n",
        );
    };
    let head = String::from_utf8_lossy(&output[..end]);
    let mut status = "200 OK".to_owned();
    let mut headers = Vec::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("status") {
            status = value.trim().to_owned();
        } else {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    response(&status, &headers, &output[body_start..])
}
