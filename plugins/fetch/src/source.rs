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

use scaffolder_plugin_sdk::{ActionError, Context, Result, http};

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
            .ok_or_else(|| {
                paths::outside(format!(
                    "the fetch URL '{url}' is outside the template's directory"
                ))
            });
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

/// Reads one file: from the template's directory, or downloaded with `token` as bearer.
pub fn read_file(ctx: &Context, url: &str, token: Option<&str>) -> Result<Vec<u8>> {
    match resolve(ctx, url)? {
        Source::Local(path) => {
            if std::path::Path::new(&path).is_dir() {
                return Err(ActionError::invalid_input(format!(
                    "the fetch URL '{url}' is a directory, not a file"
                )));
            }
            std::fs::read(&path).map_err(|err| {
                ActionError::failed(format!(
                    "could not read '{url}' from the template's directory: {err}"
                ))
            })
        }
        Source::Remote(remote) => download(&remote, token),
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
        let response = http::request("GET", &current, &headers, None)?;
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
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn is_http(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// `scheme://authority` of an absolute URL, lowercased.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}", &rest[..end]).to_ascii_lowercase()
}

/// Resolves `reference` against the absolute `http(s)` URL `base`, as a browser does for
/// relative links (query and fragment of the base dropped, `.`/`..` applied).
pub fn join_url(base: &str, reference: &str) -> String {
    if scheme(reference).is_some() {
        return reference.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(network_path) = reference.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let base_path = &rest[authority_end..];
    let base_path = &base_path[..base_path.find(['?', '#']).unwrap_or(base_path.len())];
    let split = reference.find(['?', '#']).unwrap_or(reference.len());
    let (path, suffix) = reference.split_at(split);
    let joined = if path.is_empty() {
        base_path.to_owned()
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        let directory = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        format!("{directory}/{path}")
    };
    let mut resolved = paths::normalize(&joined);
    let keeps_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if keeps_slash && resolved != "/" {
        resolved.push('/');
    }
    format!("{scheme}://{authority}{resolved}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_references_resolve_like_a_browser() {
        let base = "https://example.com/org/repo/blob/main/template.yaml?x=1";
        assert_eq!(
            join_url(base, "./skeleton/a.txt"),
            "https://example.com/org/repo/blob/main/skeleton/a.txt"
        );
        assert_eq!(
            join_url(base, "../other/"),
            "https://example.com/org/repo/blob/other/"
        );
        assert_eq!(join_url(base, "/root.txt"), "https://example.com/root.txt");
        assert_eq!(
            join_url(base, "https://other.example/x"),
            "https://other.example/x"
        );
        assert_eq!(
            join_url("http://h:8080/a/b", "c?d=1"),
            "http://h:8080/a/c?d=1"
        );
    }

    #[test]
    fn schemes_are_what_new_url_accepts() {
        assert_eq!(scheme("https://x"), Some("https"));
        assert_eq!(scheme("file:///x"), Some("file"));
        assert_eq!(scheme("./skeleton"), None);
        assert_eq!(scheme("skeleton"), None);
        assert_eq!(scheme("../a:b"), None);
    }
}
