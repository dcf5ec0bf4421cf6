//! Where a fetch `url` points, and reading it (Backstage's `fetchContents`/`fetchFile`).
//!
//! - An absolute `http(s)` URL is downloaded through `wasi:http`; what is reachable is
//!   the operator's grant. Other absolute URLs are refused.
//! - A relative URL resolves against the template's location: with a `file://` location,
//!   inside the template's directory (mounted read-only at `/template`), never outside it;
//!   with an `http(s)` location, against that URL, and is downloaded.
//! - A relative URL without a template location is Backstage's `InputError`.
//!
//! Directories can only be read from the template's directory: downloading a tree needs
//! Backstage's `UrlReader.readTree` (archives per SCM), which is not implemented yet.

use scaffolder_plugin_sdk::url::{join as join_url, scheme};
use scaffolder_plugin_sdk::{ActionError, Context, Result, files, http};

use crate::tree;

use scaffolder_plugin_sdk::paths;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// A resolved fetch URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A guest path inside the template's directory.
    Local(String),
    /// An absolute `http(s)` URL.
    Remote(String),
}

/// Resolves `url` against the template's location.
pub fn resolve(ctx: &Context, url: &str) -> Result<Source> {
    if let Some(scheme) = scheme(url) {
        return if is_http(scheme) {
            Ok(Source::Remote(url.to_owned()))
        } else {
            Err(ActionError::invalid_input(format!(
                "cannot fetch {url}: only http and https URLs, and paths relative to the template, can be fetched"
            )))
        };
    }
    let Some(base) = ctx.template_base_url() else {
        return Err(ActionError::invalid_input(format!(
            "Failed to fetch, template location could not be determined and the fetch URL is relative, {url}"
        )));
    };
    if base.starts_with("file://") {
        let Some(dir) = ctx.template_directory() else {
            return Err(ActionError::Denied(format!(
                "cannot fetch {url}: the template's directory is not available to this action (grant the plugin `templateDirectory`)"
            )));
        };
        return paths::resolve_child(dir, url)
            .map(Source::Local)
            .ok_or_else(paths::outside);
    }
    match scheme(base) {
        Some(scheme) if is_http(scheme) => Ok(Source::Remote(join_url(base, url))),
        _ => Err(ActionError::invalid_input(format!(
            "No integration found for location {base}"
        ))),
    }
}

/// The error for a directory that would have to be downloaded.
pub fn directory_over_http(url: &str) -> ActionError {
    ActionError::failed(format!(
        "fetching a directory over HTTP is not supported yet: {url} (use a path relative to a template on disk, or fetch single files with fetch:plain:file or fetch:template:file)"
    ))
}

/// Reads one file and its mode: from the template's directory, or downloaded with `token`
/// as bearer (with the default mode). `destination` is where Backstage's `fs.copyFile`
/// would have written it, named in its error message when the file cannot be read.
pub fn read_file(
    ctx: &Context,
    url: &str,
    token: Option<&str>,
    destination: &str,
) -> Result<(Vec<u8>, u32)> {
    match resolve(ctx, url)? {
        Source::Local(path) => {
            let unreadable =
                |err: &std::io::Error| io_error(ctx, err, "copyfile", &path, Some(destination));
            if std::path::Path::new(&path).is_dir() {
                let err = std::io::Error::from(std::io::ErrorKind::IsADirectory);
                return Err(unreadable(&err));
            }
            let contents = std::fs::read(&path).map_err(|err| unreadable(&err))?;
            let mode = files::mode(&path).map_err(|err| ActionError::failed(err.to_string()))?;
            Ok((contents, mode))
        }
        Source::Remote(remote) => Ok((download(&remote, token)?, tree::DEFAULT_MODE)),
    }
}

/// Node's error for a failed `syscall` on `path` (and `dest`), as Backstage surfaces it,
/// with paths in the template's directory shown where the host has that directory.
pub fn io_error(
    ctx: &Context,
    err: &std::io::Error,
    syscall: &str,
    path: &str,
    dest: Option<&str>,
) -> ActionError {
    let path = host_path(ctx, path);
    ActionError::failed(files::node_error(err, syscall, &path, dest))
}

/// A guest path in the template's directory as the host names it: the directory of the
/// template's `file://` location (Backstage's messages show that path).
pub fn host_path(ctx: &Context, guest: &str) -> String {
    let host_dir = ctx
        .template_base_url()
        .and_then(|base| base.strip_prefix("file://"))
        .and_then(|file| file.rsplit_once('/'))
        .map(|(dir, _)| dir);
    match (ctx.template_directory(), host_dir) {
        (Some(dir), Some(host_dir)) => match guest.strip_prefix(dir) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{host_dir}{rest}"),
            _ => guest.to_owned(),
        },
        _ => guest.to_owned(),
    }
}

/// `GET url`, following redirects; the token goes only to the first URL's origin.
pub fn download(url: &str, token: Option<&str>) -> Result<Vec<u8>> {
    let first_origin = origin(url);
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let authorization = token
            .filter(|t| !t.is_empty() && origin(&current) == first_origin)
            .map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        let response = http::request("GET", &current, &headers, None).map_err(|err| match err {
            // What Backstage's UrlReader says of a host it may not read.
            ActionError::Denied(_) => ActionError::Denied(format!(
                "Reading from '{url}' is not allowed. You may need to configure an integration for the target host, or add it to the configured list of allowed hosts at 'backend.reading.allow'"
            )),
            other => other,
        })?;
        match response.status {
            200..=299 => return Ok(response.body),
            301 | 302 | 303 | 307 | 308 => {
                if let Some(location) = response.header("location") {
                    current = join_url(&current, location);
                    continue;
                }
            }
            _ => {}
        }
        return Err(ActionError::failed(format!(
            "could not fetch {current}: the server answered {}",
            response.status
        )));
    }
    Err(ActionError::failed(format!(
        "could not fetch {url}: more than {MAX_REDIRECTS} redirects"
    )))
}

/// The scheme of an absolute URL (what WHATWG's `new URL` accepts without a base).
fn is_http(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// `scheme://authority` of an absolute URL, lowercased.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}", &rest[..end]).to_ascii_lowercase()
}
