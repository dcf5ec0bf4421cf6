//! `catalogInfoPath` against `repoContentsUrl` as Backstage's SCM integrations resolve it
//! (`integrations.byUrl(base).resolveUrl({ url, base })`).
//!
//! The integrations are the operator's (`scaffolder_plugin_sdk::integrations`).

use scaffolder_plugin_sdk::integrations::{self, Integration};
use scaffolder_plugin_sdk::url::{join, scheme};
use scaffolder_plugin_sdk::{ActionError, Result};

/// Resolves `path` against `base` with the integration for `base`'s host.
pub fn resolve(integrations: &[Integration], base: &str, path: &str) -> Result<String> {
    let host = host_of(base);
    let Some(integration) = host.and_then(|h| integrations::find(integrations, h)) else {
        return Err(ActionError::invalid_input(format!(
            "No integration found for host {base}"
        )));
    };
    let kind = integration.kind.as_str();
    if !matches!(kind, "github" | "gitlab" | "bitbucketCloud" | "gitea") {
        return Err(ActionError::invalid_input(format!(
            "resolving catalogInfoPath against a {kind} repository URL is not supported: give catalogInfoUrl, the catalog file's full URL, instead"
        )));
    }
    let resolved = default_resolve(base, path, |segments| repository_root(kind, segments));
    Ok(if kind == "github" {
        replace_github_url_type(&resolved, "tree")
    } else {
        resolved
    })
}

/// How many path segments of a file URL name the repository and ref, as `git-url-parse`
/// splits them for each host: `owner/repo/blob/ref` (GitHub), `group/../repo/-/blob/ref`
/// (GitLab), `owner/repo/src/ref` (Bitbucket Cloud), `owner/repo/src/branch/ref` (Gitea).
fn repository_root(kind: &str, segments: &[&str]) -> Option<usize> {
    let marker =
        |at: usize, markers: &[&str]| segments.get(at).is_some_and(|s| markers.contains(s));
    match kind {
        "github" if segments.len() >= 4 && marker(2, &["blob", "tree", "edit"]) => Some(4),
        "bitbucketCloud" if segments.len() >= 4 && marker(2, &["src"]) => Some(4),
        "gitea" if segments.len() >= 5 && marker(2, &["src"]) => Some(5),
        "gitlab" => {
            let dash = segments.iter().position(|s| *s == "-")?;
            (segments.len() >= dash + 3).then_some(dash + 3)
        }
        _ => None,
    }
}

/// Backstage's `defaultScmResolveUrl`: an absolute URL stays; a path starting with `/`
/// is taken from the repository root (the first `root(segments)` path segments, or the
/// whole base path when the base names no file); anything else resolves as
/// `new URL(path, base)`. The base's query is kept.
fn default_resolve(base: &str, path: &str, root: impl Fn(&[&str]) -> Option<usize>) -> String {
    if scheme(path).is_some() {
        return path.to_owned();
    }
    let (without_query, query) = split_query(base);
    let resolved = if path.starts_with('/') {
        let (origin, base_path) = split_origin(without_query);
        let segments: Vec<&str> = base_path.split('/').skip(1).collect();
        let root = match root(&segments) {
            Some(n) => format!("/{}", segments[..n].join("/")),
            None => base_path.trim_end_matches('/').to_owned(),
        };
        format!("{origin}{root}{path}")
    } else {
        join(without_query, path)
    };
    let (resolved, _) = split_query(&resolved);
    format!("{resolved}{query}")
}

/// GitHub's `replaceGithubUrlType`: `/owner/repo/blob/...` becomes `/owner/repo/tree/...`.
fn replace_github_url_type(url: &str, kind: &str) -> String {
    let (origin, path) = split_origin(url);
    let mut segments: Vec<&str> = path.split('/').collect();
    if segments.len() > 4 && matches!(segments[3], "blob" | "tree" | "edit") {
        segments[3] = kind;
    }
    format!("{origin}{}", segments.join("/"))
}

fn split_query(url: &str) -> (&str, &str) {
    url.split_at(url.find('?').unwrap_or(url.len()))
}

/// `scheme://authority` and the rest.
fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url.split_at(path_start)
}

fn host_of(url: &str) -> Option<&str> {
    let (origin, _) = split_origin(url);
    let authority = origin.split_once("://")?.1;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<Integration> {
        [
            ("github", "github.com"),
            ("gitlab", "gitlab.com"),
            ("gitea", "git.example.com:3000"),
        ]
        .into_iter()
        .map(|(kind, host)| Integration::new(kind, host))
        .collect()
    }

    #[test]
    fn github_paths_resolve_from_the_repository_root_as_tree_urls() {
        let base = "https://github.com/acme/svc/blob/main";
        assert_eq!(
            resolve(&defaults(), base, "/catalog-info.yaml").unwrap(),
            "https://github.com/acme/svc/tree/main/catalog-info.yaml"
        );
        assert_eq!(
            resolve(
                &defaults(),
                "https://github.com/acme/svc/blob/main/sub",
                "/c.yaml"
            )
            .unwrap(),
            "https://github.com/acme/svc/tree/main/c.yaml"
        );
        // A relative path resolves like `new URL`: the last segment of the base goes.
        assert_eq!(
            resolve(&defaults(), base, "catalog-info.yaml").unwrap(),
            "https://github.com/acme/svc/tree/catalog-info.yaml"
        );
        assert_eq!(
            resolve(&defaults(), base, "https://elsewhere.example/c.yaml").unwrap(),
            "https://elsewhere.example/c.yaml"
        );
    }

    #[test]
    fn gitlab_and_gitea_roots_end_at_the_ref() {
        assert_eq!(
            resolve(
                &defaults(),
                "https://gitlab.com/group/sub/svc/-/blob/main/docs",
                "/catalog-info.yaml"
            )
            .unwrap(),
            "https://gitlab.com/group/sub/svc/-/blob/main/catalog-info.yaml"
        );
        assert_eq!(
            resolve(
                &defaults(),
                "http://git.example.com:3000/acme/svc/src/branch/main",
                "/catalog-info.yaml"
            )
            .unwrap(),
            "http://git.example.com:3000/acme/svc/src/branch/main/catalog-info.yaml"
        );
    }

    #[test]
    fn unknown_hosts_are_backstages_input_error() {
        let err = resolve(&defaults(), "https://git.internal/x/y", "/c.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "No integration found for host https://git.internal/x/y"
        );
    }
}
