//! Where a published branch's files can be read: `publish:git`'s `repoContentsUrl`
//! output, to which a template appends `/catalog-info.yaml` for `catalog:register`.
//!
//! Backstage's catalog reads such a URL through the integration of its host
//! (`ScmIntegrations`), which turns the host's browse URL into an API or raw request; a
//! host without an integration is read with a plain `GET` (when `backend.reading.allow`
//! lists it). So the URL follows the layout of the host's kind, as Backstage's own
//! publishers output it:
//!
//! | kind              | `repoContentsUrl`                                  | Backstage's action          |
//! |-------------------|----------------------------------------------------|-----------------------------|
//! | GitHub            | `<repository>/blob/<branch>`                       | `publish:github`            |
//! | GitLab            | `<repository>/-/blob/<branch>`                     | `publish:gitlab`            |
//! | Gitea, Forgejo    | `<repository>/src/branch/<branch>`                 | `publish:gitea`             |
//! | Bitbucket Cloud   | `<repository>/src/<branch>`                        | `publish:bitbucketCloud`    |
//! | Bitbucket Server  | `<base>/projects/<KEY>/repos/<slug>/browse`        | `publish:bitbucketServer`   |
//! | Azure DevOps      | `<repository>`                                     | `publish:azure`             |
//!
//! (`<repository>` is the clone URL without credentials and `.git`.) None of them outputs
//! a `catalogInfoUrl`. Bitbucket Server's browse URL names no branch, so the catalog
//! reads the repository's default branch; Azure's readers take the path in a query.
//!
//! The kind comes from the operator's `integrations` entry for the host, else from the
//! host's name (`github…`, `gitlab…`, `gitea…`, `forgejo…`, `codeberg.org`,
//! `bitbucket.org`, `bitbucket…`, `dev.azure.com`). Any other host gets a pattern: the
//! step's `repoContentsUrl` input (which wins over everything), else the plugin's
//! `repoContentsUrl` configuration, else [`OTHER_HOSTS`], Gitea's raw-file layout, which a
//! plain `GET` reads.

use scaffolder_plugin_sdk::integrations::{self, Integration};
use scaffolder_plugin_sdk::{ActionError, Result};

/// The plugin configuration key holding the pattern for hosts of no known kind.
pub const CONFIG_KEY: &str = "repoContentsUrl";

/// The pattern for hosts of no known kind when neither the step nor the operator gives one.
pub const OTHER_HOSTS: &str = "{repository}/raw/branch/{branch}";

/// The placeholders a pattern may use.
pub const PLACEHOLDERS: [&str; 5] = ["{repository}", "{origin}", "{host}", "{path}", "{branch}"];

/// The URL layouts this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Github,
    Gitlab,
    /// Gitea and Forgejo (a Gitea fork with the same URLs).
    Gitea,
    BitbucketCloud,
    BitbucketServer,
    Azure,
    /// Any other host: the layout comes from a pattern.
    Other,
}

impl HostKind {
    /// The kind of `host` (`name[:port]`): its configured integration's, else the one its
    /// name suggests, else [`HostKind::Other`].
    pub fn of(host: &str, integrations: &[Integration]) -> Self {
        match integrations::find(integrations, host).map(|i| i.kind.as_str()) {
            Some("github") => return Self::Github,
            Some("gitlab") => return Self::Gitlab,
            Some("gitea") => return Self::Gitea,
            Some("bitbucketCloud") => return Self::BitbucketCloud,
            Some("bitbucketServer") => return Self::BitbucketServer,
            Some("azure") => return Self::Azure,
            _ => {}
        }
        Self::from_name(host)
    }

    fn from_name(host: &str) -> Self {
        let name = host
            .rsplit_once(':')
            .map_or(host, |(name, _)| name)
            .to_ascii_lowercase();
        let labels: Vec<&str> = name.split('.').collect();
        let any_label = |prefix: &str| labels.iter().any(|l| l.starts_with(prefix));
        if name == "bitbucket.org" {
            Self::BitbucketCloud
        } else if name == "dev.azure.com" || name.ends_with(".visualstudio.com") {
            Self::Azure
        } else if name == "codeberg.org" || any_label("gitea") || any_label("forgejo") {
            Self::Gitea
        } else if any_label("github") {
            Self::Github
        } else if any_label("gitlab") {
            Self::Gitlab
        } else if any_label("bitbucket") {
            Self::BitbucketServer
        } else {
            Self::Other
        }
    }
}

/// What decides the layout besides the host's kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct Patterns<'a> {
    /// The step's `repoContentsUrl` input: used for every host.
    pub step: Option<&'a str>,
    /// The plugin's `repoContentsUrl` configuration: used for hosts of no known kind.
    pub operator: Option<&'a str>,
}

/// The clone URL split into the parts the layouts use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remote<'a> {
    /// `scheme://`.
    scheme: &'a str,
    /// `name[:port]`, without credentials.
    host: &'a str,
    /// The path without leading and trailing `/` and without `.git`.
    path: &'a str,
}

impl<'a> Remote<'a> {
    fn parse(remote_url: &'a str) -> Result<Self> {
        let not_a_url = || {
            ActionError::invalid_input(format!(
                "remoteUrl '{remote_url}' is not a repository URL: give the repository's HTTP clone URL, e.g. https://git.example.com/team/service.git"
            ))
        };
        let (scheme, rest) = remote_url.split_once("://").ok_or_else(not_a_url)?;
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let path = path.trim_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .trim_end_matches('/');
        if host.is_empty() || path.is_empty() {
            return Err(not_a_url());
        }
        Ok(Self {
            scheme: &remote_url[..scheme.len() + 3],
            host,
            path,
        })
    }

    fn origin(&self) -> String {
        format!("{}{}", self.scheme, self.host)
    }

    fn repository(&self) -> String {
        format!("{}/{}", self.origin(), self.path)
    }
}

/// Checks a pattern (before anything is pushed); the error names the placeholder and
/// is to be prefixed with where the pattern came from.
fn check_pattern(pattern: &str) -> std::result::Result<(), String> {
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map(|e| start + e + 1);
        let placeholder = end.map_or(&rest[start..], |end| &rest[start..end]);
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(format!(
                "'{pattern}' uses {placeholder}, which is not one of {}: write e.g. {OTHER_HOSTS}",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &rest[end.unwrap_or(rest.len())..];
    }
    Ok(())
}

/// The `repoContentsUrl` of `branch` of the repository cloned from `remote_url`; an
/// error for a URL that names no repository or a pattern with an unknown placeholder.
pub fn repo_contents_url(
    remote_url: &str,
    branch: &str,
    integrations: &[Integration],
    patterns: Patterns<'_>,
) -> Result<String> {
    let remote = Remote::parse(remote_url)?;
    if let Some(step) = patterns.step {
        check_pattern(step)
            .map_err(|e| ActionError::invalid_input(format!("the repoContentsUrl input {e}")))?;
    }
    if let Some(operator) = patterns.operator {
        check_pattern(operator).map_err(|e| {
            ActionError::failed(format!(
                "the builtin-publish plugin's `{CONFIG_KEY}` configuration {e}"
            ))
        })?;
    }
    if let Some(pattern) = patterns.step {
        return Ok(fill(pattern, &remote, branch));
    }
    let repository = remote.repository();
    Ok(match HostKind::of(remote.host, integrations) {
        HostKind::Github => format!("{repository}/blob/{branch}"),
        HostKind::Gitlab => format!("{repository}/-/blob/{branch}"),
        HostKind::Gitea => format!("{repository}/src/branch/{branch}"),
        HostKind::BitbucketCloud => format!("{repository}/src/{branch}"),
        HostKind::BitbucketServer => bitbucket_server(&remote),
        HostKind::Azure => repository,
        HostKind::Other => fill(patterns.operator.unwrap_or(OTHER_HOSTS), &remote, branch),
    })
}

/// A Bitbucket Server clone URL, `<base>/scm/<key>/<slug>.git` (`~<user>` as the key of a
/// personal repository), as the repository's browse URL, `links.self` in its REST API.
fn bitbucket_server(remote: &Remote<'_>) -> String {
    let segments: Vec<&str> = remote.path.split('/').collect();
    match segments.iter().rposition(|s| *s == "scm") {
        Some(scm) if segments.len() == scm + 3 => {
            let context = segments[..scm]
                .iter()
                .map(|s| format!("/{s}"))
                .collect::<String>();
            let (key, slug) = (segments[scm + 1], segments[scm + 2]);
            let owner = match key.strip_prefix('~') {
                Some(user) => format!("users/{user}"),
                None => format!("projects/{}", key.to_ascii_uppercase()),
            };
            format!("{}{context}/{owner}/repos/{slug}/browse", remote.origin())
        }
        // Not a clone URL of Bitbucket Server's form: the repository's own URL.
        _ => format!("{}/browse", remote.repository()),
    }
}

fn fill(pattern: &str, remote: &Remote<'_>, branch: &str) -> String {
    pattern
        .replace("{repository}", &remote.repository())
        .replace("{origin}", &remote.origin())
        .replace("{host}", remote.host)
        .replace("{path}", remote.path)
        .replace("{branch}", branch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(remote: &str, integrations: &[Integration], patterns: Patterns<'_>) -> String {
        repo_contents_url(remote, "main", integrations, patterns).unwrap()
    }

    #[test]
    fn each_common_host_gets_the_layout_backstage_reads() {
        let defaults = integrations::defaults();
        let cases = [
            (
                "https://github.com/o/r.git",
                "https://github.com/o/r/blob/main",
            ),
            (
                "https://github.example.com/o/r.git",
                "https://github.example.com/o/r/blob/main",
            ),
            (
                "https://gitlab.com/g/sub/r.git",
                "https://gitlab.com/g/sub/r/-/blob/main",
            ),
            (
                "https://gitlab.example.com/g/r.git",
                "https://gitlab.example.com/g/r/-/blob/main",
            ),
            (
                "https://gitea.example.com/o/r.git",
                "https://gitea.example.com/o/r/src/branch/main",
            ),
            (
                "https://forgejo.example.com:3000/o/r.git",
                "https://forgejo.example.com:3000/o/r/src/branch/main",
            ),
            (
                "https://codeberg.org/o/r.git",
                "https://codeberg.org/o/r/src/branch/main",
            ),
            (
                "https://bitbucket.org/ws/r.git",
                "https://bitbucket.org/ws/r/src/main",
            ),
            (
                "https://x-token-auth@bitbucket.org/ws/r.git",
                "https://bitbucket.org/ws/r/src/main",
            ),
            (
                "https://bitbucket.example.com/scm/prj/r.git",
                "https://bitbucket.example.com/projects/PRJ/repos/r/browse",
            ),
            (
                "https://bitbucket.example.com/ctx/scm/~jo/r.git",
                "https://bitbucket.example.com/ctx/users/jo/repos/r/browse",
            ),
            (
                "https://org@dev.azure.com/org/p/_git/r",
                "https://dev.azure.com/org/p/_git/r",
            ),
        ];
        for (remote, expected) in cases {
            assert_eq!(
                url(remote, &defaults, Patterns::default()),
                expected,
                "{remote}"
            );
        }
    }

    #[test]
    fn a_configured_integration_names_the_kind_of_any_host() {
        let integrations = vec![
            Integration::new("gitea", "git.example.com"),
            Integration::new("gitlab", "code.example.com:8443"),
            Integration::new("bitbucketServer", "src.example.com"),
        ];
        let cases = [
            (
                "https://git.example.com/o/r.git",
                "https://git.example.com/o/r/src/branch/main",
            ),
            (
                "https://code.example.com:8443/g/r",
                "https://code.example.com:8443/g/r/-/blob/main",
            ),
            (
                "https://src.example.com/scm/ab/r.git",
                "https://src.example.com/projects/AB/repos/r/browse",
            ),
            // No integration and no telling name: Gitea's raw-file layout.
            (
                "http://127.0.0.1:8080/o/r.git",
                "http://127.0.0.1:8080/o/r/raw/branch/main",
            ),
        ];
        for (remote, expected) in cases {
            assert_eq!(
                url(remote, &integrations, Patterns::default()),
                expected,
                "{remote}"
            );
        }
    }

    #[test]
    fn credentials_never_reach_the_url() {
        let got = url(
            "https://git:s3cret@git.internal/o/r.git",
            &[],
            Patterns::default(),
        );
        assert_eq!(got, "https://git.internal/o/r/raw/branch/main");
    }

    #[test]
    fn the_operator_pattern_serves_other_hosts_and_the_step_pattern_every_host() {
        let operator = Patterns {
            step: None,
            operator: Some("{origin}/cgit/{path}.git/plain/?h={branch}"),
        };
        assert_eq!(
            url("https://git.internal/team/r.git", &[], operator),
            "https://git.internal/cgit/team/r.git/plain/?h=main"
        );
        // A known host keeps its layout.
        assert_eq!(
            url("https://github.com/o/r.git", &[], operator),
            "https://github.com/o/r/blob/main"
        );
        let step = Patterns {
            step: Some("{repository}/files/{branch}"),
            ..operator
        };
        assert_eq!(
            url("https://github.com/o/r.git", &[], step),
            "https://github.com/o/r/files/main"
        );
    }

    #[test]
    fn a_pattern_with_an_unknown_placeholder_is_refused_before_the_push() {
        let remote = "https://git.internal/o/r.git";
        let step = |pattern| Patterns {
            step: Some(pattern),
            operator: None,
        };
        assert!(repo_contents_url(remote, "main", &[], step("{repository}/raw/{branch}")).is_ok());
        let err = repo_contents_url(remote, "main", &[], step("{repo}/raw/{branch}")).unwrap_err();
        assert!(
            matches!(&err, ActionError::InvalidInput(m)
            if m.starts_with("the repoContentsUrl input '{repo}/raw/{branch}' uses {repo}, which is not one of {repository}, {origin}")),
            "{err:?}"
        );
        assert!(repo_contents_url(remote, "main", &[], step("{repository}/{branch")).is_err());
        let operator = Patterns {
            step: None,
            operator: Some("{owner}/{branch}"),
        };
        let err = repo_contents_url(remote, "main", &[], operator).unwrap_err();
        assert!(
            matches!(&err, ActionError::Failed(m)
            if m.contains("`repoContentsUrl` configuration '{owner}/{branch}' uses {owner}")),
            "{err:?}"
        );
    }

    #[test]
    fn a_remote_without_a_path_is_refused() {
        for remote in [
            "https://git.example.com",
            "https://git.example.com/",
            "git.example.com/o/r",
        ] {
            assert!(
                repo_contents_url(remote, "main", &[], Patterns::default()).is_err(),
                "{remote}"
            );
        }
    }
}
