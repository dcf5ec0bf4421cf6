//! `integrations.*`: Backstage's SCM integrations, with default hosts filled in.

use scaffolder_template::{ScmIntegration, ScmKind};
use serde::Deserialize;

use crate::parse::{KeyError, Segment, key_path};

/// `integrations.*`: Backstage's SCM integrations, one list per kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct IntegrationsConfig {
    pub github: Vec<Integration>,
    pub gitlab: Vec<Integration>,
    pub gitea: Vec<Integration>,
    pub bitbucket_cloud: Vec<Integration>,
    pub bitbucket_server: Vec<Integration>,
    pub azure: Vec<Integration>,
    pub gerrit: Vec<Integration>,
}

/// One SCM host. Credentials are never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a mapping")]
pub struct Integration {
    /// The host name; defaults to `github.com`, `gitlab.com`, `bitbucket.org` or
    /// `dev.azure.com` for those kinds, required for the others.
    pub host: String,
    pub api_base_url: Option<String>,
    pub token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl IntegrationsConfig {
    /// Every configured integration with its kind, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = (ScmKind, &Integration)> {
        self.lists()
            .into_iter()
            .flat_map(|(kind, list)| list.iter().map(move |i| (kind, i)))
    }

    /// The configured integration for `host`, if any.
    pub fn find(&self, host: &str) -> Option<(ScmKind, &Integration)> {
        self.iter().find(|(_, i)| i.host.eq_ignore_ascii_case(host))
    }

    /// The hosts templates may name in `parseRepoUrl`: the configured ones, then those of
    /// Backstage's defaults (github.com, gitlab.com, bitbucket.org, dev.azure.com) that
    /// are not configured.
    pub fn scm_integrations(&self) -> Vec<ScmIntegration> {
        let mut out: Vec<ScmIntegration> = self
            .iter()
            .map(|(kind, i)| ScmIntegration {
                host: i.host.clone(),
                kind,
            })
            .collect();
        for default in ScmIntegration::defaults() {
            if !out
                .iter()
                .any(|i| i.host.eq_ignore_ascii_case(&default.host))
            {
                out.push(default);
            }
        }
        out
    }

    /// Each list with its kind.
    fn lists(&self) -> [(ScmKind, &[Integration]); 7] {
        [
            (ScmKind::Github, &self.github),
            (ScmKind::Gitlab, &self.gitlab),
            (ScmKind::Gitea, &self.gitea),
            (ScmKind::BitbucketCloud, &self.bitbucket_cloud),
            (ScmKind::BitbucketServer, &self.bitbucket_server),
            (ScmKind::Azure, &self.azure),
            (ScmKind::Gerrit, &self.gerrit),
        ]
    }
}

/// Fills default hosts and requires one where the kind has none.
pub(crate) fn check_integrations(integrations: &mut IntegrationsConfig) -> Result<(), KeyError> {
    let lists = [
        ("github", Some("github.com"), &mut integrations.github),
        ("gitlab", Some("gitlab.com"), &mut integrations.gitlab),
        ("gitea", None, &mut integrations.gitea),
        (
            "bitbucketCloud",
            Some("bitbucket.org"),
            &mut integrations.bitbucket_cloud,
        ),
        ("bitbucketServer", None, &mut integrations.bitbucket_server),
        ("azure", Some("dev.azure.com"), &mut integrations.azure),
        ("gerrit", None, &mut integrations.gerrit),
    ];
    for (key, default_host, list) in lists {
        for (index, integration) in list.iter_mut().enumerate() {
            let path = || {
                let mut path = key_path(&["integrations", key]);
                path.push(Segment::Index(index));
                path.push(Segment::Key("host".to_owned()));
                path
            };
            if integration.host.is_empty() {
                match default_host {
                    Some(host) => integration.host = host.to_owned(),
                    None => {
                        return Err(KeyError {
                            path: path(),
                            message: format!(
                                "required: the host name of the {key} server, e.g. {key}.example.com"
                            ),
                        });
                    }
                }
            }
            if integration.host.contains('/') {
                return Err(KeyError {
                    path: path(),
                    message: format!(
                        "expected a host name without scheme or path (e.g. {key}.example.com), found `{}`",
                        integration.host
                    ),
                });
            }
        }
    }
    Ok(())
}
