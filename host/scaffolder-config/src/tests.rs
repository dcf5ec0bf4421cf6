use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use scaffolder_api::auth::{ExternalAccess, JwksAccess, StaticToken};
use scaffolder_engine::DryRunLimits;
use scaffolder_engine::workspace_store::{
    DEFAULT_S3_MAX_BYTES, S3Config, WorkspaceBackend, WorkspaceStoreConfig,
};
use scaffolder_plugins::PluginSource;
use scaffolder_runtime::{Grants, Limits};
use scaffolder_store::Backend;
use scaffolder_template::{ScmIntegration, ScmKind};
use serde_json::json;

use super::*;
use crate::parse::parse;
use anyhow::anyhow;
use serde_json::Value;

/// Turns an already merged configuration value into a [`Config`], without environment
/// substitution or path resolution (relative paths stay relative to the working directory).
fn from_value(value: Value) -> anyhow::Result<Config> {
    parse(value).map_err(|err| anyhow!(err.describe(&[])))
}

/// Writes `files` (name, YAML) into a temporary directory and loads them in order
/// with `env` as the environment.
fn load_files(files: &[(&str, &str)], env: &[(&str, &str)]) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, yaml)| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, yaml).unwrap();
            path
        })
        .collect();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    load_with_env(&paths, &|name| env.get(name).cloned())
}

fn error(value: Value) -> String {
    format!("{:#}", from_value(value).unwrap_err())
}

#[test]
fn defaults_when_no_files() {
    let config = load(&[]).unwrap();
    assert_eq!(config.backend.listen, Listen::default());
    assert_eq!(config.backend.listen.host, "127.0.0.1");
    assert_eq!(config.backend.listen.port, 7007);
    assert_eq!(config.backend.base_url, None);
    assert_eq!(
        config.backend.database.client,
        DatabaseClient::BetterSqlite3
    );
    assert_eq!(
        config.backend.database.database_url(Path::new("/data")),
        "sqlite:///data/scaffolder.sqlite"
    );
    assert!(config.backend.cors.is_none());
    assert!(config.backend.auth.external_access.is_empty());
    assert!(!config.backend.auth.dangerously_disable_default_auth_policy);
    let s = &config.scaffolder;
    assert_eq!(s.concurrent_tasks_limit, 10);
    assert!(s.task_recovery.enabled);
    assert_eq!(s.task_recovery.stale_timeout, Duration::from_secs(30));
    assert_eq!(s.task_timeout, Duration::from_secs(86_400));
    assert_eq!(s.graceful_shutdown_timeout, Duration::from_secs(30));
    assert_eq!(s.workspace_retention, Duration::from_secs(7 * 86_400));
    assert_eq!(s.dry_run.max_files, 10_000);
    assert_eq!(s.dry_run.max_bytes, 64 << 20);
    assert!(s.plugins.is_empty() && s.templates.is_empty());
    assert_eq!(
        config.integrations.scm_integrations(),
        ScmIntegration::defaults()
    );
    // An empty object and an empty file mean the same.
    assert_eq!(
        from_value(json!({})).unwrap().backend.listen,
        Listen::default()
    );
    assert!(load_files(&[("empty.yaml", "")], &[]).is_ok());
}

#[test]
fn env_substitution_when_variables_are_set_escaped_or_defaulted() {
    let yaml = r#"
backend:
  baseUrl: http://${HOST}:${ PORT }/api
  listen:
    port: ${PORT}
scaffolder:
  defaultEnvironment:
    parameters:
      escaped: "$${HOST} and $$${HOST}"
      template: "${{ parameters.name }}"
      fallback: ${MISSING:-dev}
      emptyFallback: ${EMPTY:-x}
      empty: "${EMPTY}"
      list: ["${HOST}"]
"#;
    let config = load_files(
        &[("app-config.yaml", yaml)],
        &[("HOST", "example.com"), ("PORT", "8080"), ("EMPTY", "")],
    )
    .unwrap();
    assert_eq!(
        config.backend.base_url.as_deref(),
        Some("http://example.com:8080/api")
    );
    assert_eq!(config.backend.listen.port, 8080);
    assert_eq!(
        Value::Object(config.scaffolder.default_environment.parameters),
        json!({
            "escaped": "${HOST} and $${HOST}",
            "template": "${{ parameters.name }}",
            "fallback": "dev",
            "emptyFallback": "x",
            "empty": "",
            "list": ["example.com"],
        })
    );
}

#[test]
fn env_substitution_error_when_variable_is_missing() {
    let yaml = "backend:\n  database:\n    client: pg\n    connection: ${DATABASE_URL}\n";
    let err = format!(
        "{:#}",
        load_files(&[("app-config.yaml", yaml)], &[]).unwrap_err()
    );
    assert!(
            err.ends_with(
                "app-config.yaml: backend.database.connection: environment variable DATABASE_URL is not set"
            ),
            "{err}"
        );
}

#[test]
fn later_files_win_when_merging() {
    let base = r#"
backend:
  listen: { host: 0.0.0.0, port: 7007 }
  baseUrl: http://base
scaffolder:
  templates: [a, b]
  defaultAuthor: { name: Scaffolder }
"#;
    let local = r#"
backend:
  listen: { port: 8000 }
  baseUrl: ~
scaffolder:
  templates: [c]
  defaultAuthor: { email: s@example.com }
"#;
    let config = load_files(&[("base.yaml", base), ("local.yaml", local)], &[]).unwrap();
    assert_eq!(
        config.backend.listen,
        Listen {
            host: "0.0.0.0".into(),
            port: 8000
        }
    );
    // `null` unsets what an earlier file set.
    assert_eq!(config.backend.base_url, None);
    // Lists are replaced, not concatenated.
    assert_eq!(config.scaffolder.templates.len(), 1);
    assert!(config.scaffolder.templates[0].ends_with("c"));
    assert_eq!(
        config.scaffolder.default_author,
        DefaultAuthor {
            name: Some("Scaffolder".into()),
            email: Some("s@example.com".into())
        }
    );
}

#[test]
fn database_url_for_each_connection_form() {
    let data = Path::new("/var/lib/scaffolder");
    let cases = [
        (json!({}), "sqlite:///var/lib/scaffolder/scaffolder.sqlite"),
        (
            json!({"client": "sqlite3"}),
            "sqlite:///var/lib/scaffolder/scaffolder.sqlite",
        ),
        (json!({"connection": ":memory:"}), "sqlite::memory:"),
        (
            json!({"connection": "/tmp/db.sqlite"}),
            "sqlite:///tmp/db.sqlite",
        ),
        (
            json!({"client": "better-sqlite3", "connection": {"directory": "/srv/db"}}),
            "sqlite:///srv/db/scaffolder.sqlite",
        ),
        (
            json!({"connection": {"filename": "rel/x.db"}}),
            "sqlite://rel/x.db",
        ),
        (
            json!({"client": "pg", "connection": "postgresql://u:p@db:5433/x"}),
            "postgresql://u:p@db:5433/x",
        ),
        (
            json!({"client": "pg", "connection": {"host": "db", "port": "5433", "user": "back stage", "password": "p@ss:w/rd", "database": "scaf"}}),
            "postgres://back%20stage:p%40ss%3Aw%2Frd@db:5433/scaf",
        ),
        (
            json!({"client": "pg", "connection": {"host": "db", "user": "postgres"}}),
            "postgres://postgres@db:5432/backstage_plugin_scaffolder",
        ),
        (
            json!({"client": "pg", "connection": {"host": "::1", "port": 5432}}),
            "postgres://[::1]:5432/backstage_plugin_scaffolder",
        ),
    ];
    for (database, url) in cases {
        let config = from_value(json!({"backend": {"database": database.clone()}}))
            .unwrap_or_else(|e| panic!("{database}: {e:#}"));
        assert_eq!(
            config.backend.database.database_url(data),
            url,
            "{database}"
        );
    }
}

#[test]
fn database_error_when_connection_does_not_fit_the_client() {
    let cases = [
        (
            json!({"client": "pg"}),
            "required when backend.database.client is pg",
        ),
        (
            json!({"client": "pg", "connection": ":memory:"}),
            "SQLite settings",
        ),
        (
            json!({"client": "pg", "connection": "db.sqlite"}),
            "expected a postgres:// URL",
        ),
        (
            json!({"connection": "postgres://db/x"}),
            "set the client to pg",
        ),
        (json!({"connection": {"host": "db"}}), "PostgreSQL settings"),
        (
            json!({"connection": {"directory": "a", "filename": "b"}}),
            "not both",
        ),
        (json!({"client": "mysql"}), "unknown variant `mysql`"),
    ];
    for (database, expected) in cases {
        let err = error(json!({"backend": {"database": database.clone()}}));
        assert!(err.contains("backend.database."), "{database}: {err}");
        assert!(err.contains(expected), "{database}: {err}");
    }
}

#[test]
fn listen_accepts_string_forms() {
    let cases = [
        (json!(":7008"), "127.0.0.1", 7008),
        (json!("0.0.0.0:8080"), "0.0.0.0", 8080),
        (json!("9000"), "127.0.0.1", 9000),
        (json!("[::]:7007"), "::", 7007),
        (json!({"port": "7100"}), "127.0.0.1", 7100),
        (json!({"host": "::1"}), "::1", 7007),
    ];
    for (listen, host, port) in cases {
        let config = from_value(json!({"backend": {"listen": listen}})).unwrap();
        assert_eq!(
            config.backend.listen,
            Listen {
                host: host.into(),
                port
            },
            "{listen}"
        );
    }
    let err = error(json!({"backend": {"listen": "a:b:c"}}));
    assert!(err.starts_with("backend.listen: "), "{err}");
    assert!(err.contains("<host>:<port>"), "{err}");
    let err = error(json!({"backend": {"listen": {"port": 70000}}}));
    assert!(err.starts_with("backend.listen.port: "), "{err}");
}

#[test]
fn server_timeouts_default_to_node_and_accept_durations() {
    let server = from_value(json!({})).unwrap().backend.server;
    assert_eq!(server.headers_timeout, Duration::from_secs(60));
    assert_eq!(server.request_timeout, Duration::from_secs(300));
    assert_eq!(server.keep_alive_timeout, Duration::from_secs(5));
    assert_eq!(server.max_connections, None);
    let server = from_value(json!({"backend": {"server": {
        "headersTimeout": {"seconds": 2},
        "requestTimeout": "PT3S",
        "keepAliveTimeout": "1500ms",
        "maxConnections": 10,
    }}}))
    .unwrap()
    .backend
    .server;
    assert_eq!(server.headers_timeout, Duration::from_secs(2));
    assert_eq!(server.request_timeout, Duration::from_secs(3));
    assert_eq!(server.keep_alive_timeout, Duration::from_millis(1500));
    assert_eq!(server.max_connections, Some(10));
    let err = error(json!({"backend": {"server": {"keepAliveTimeout": 5}}}));
    assert!(
        err.starts_with("backend.server.keepAliveTimeout: "),
        "{err}"
    );
}

#[test]
fn durations_in_all_three_forms() {
    let cases = [
        (json!({"minutes": 1, "seconds": 30}), 90_000),
        (json!({"hours": 1, "milliseconds": 5}), 3_600_005),
        (json!({"days": 1}), 86_400_000),
        (json!("PT30S"), 30_000),
        (json!("PT1H30M"), 5_400_000),
        (json!("P1D"), 86_400_000),
        (json!("P1DT0.5S"), 86_400_500),
        (json!("30s"), 30_000),
        (json!("500ms"), 500),
        (json!("5m"), 300_000),
        (json!("2h"), 7_200_000),
        (json!("1.5 hours"), 5_400_000),
    ];
    for (value, millis) in cases {
        let config = from_value(json!({"scaffolder": {"taskTimeout": value}})).unwrap();
        assert_eq!(
            config.scaffolder.task_timeout,
            Duration::from_millis(millis),
            "{value}"
        );
    }
    for bad in [
        json!("30"),
        json!("P1M"),
        json!("PT"),
        json!("soon"),
        json!(30),
    ] {
        let err = error(json!({"scaffolder": {"taskRecovery": {"staleTimeout": bad}}}));
        assert!(
            err.starts_with("scaffolder.taskRecovery.staleTimeout: "),
            "{bad}: {err}"
        );
        assert!(err.contains("30s"), "{bad}: {err}");
    }
    let err = error(json!({"scaffolder": {"taskTimeout": {"years": 1}}}));
    assert!(err.contains("unknown field `years`"), "{err}");
}

#[test]
fn a_stale_timeout_must_span_three_heartbeats() {
    let err = error(json!({"scaffolder": {"taskRecovery": {"staleTimeout": "2s"}}}));
    assert_eq!(
        err,
        "scaffolder.taskRecovery.staleTimeout: 2s is shorter than 3 heartbeats (one every 1s): \
             a healthy task would be taken for a dead one and run twice; use at least 3s"
    );
    let config =
        from_value(json!({"scaffolder": {"taskRecovery": {"staleTimeout": "3s"}}})).unwrap();
    assert_eq!(
        config.scaffolder.task_recovery.stale_timeout,
        Duration::from_secs(3)
    );
    // Without recovery the timeout is never used.
    from_value(json!({"scaffolder": {"taskRecovery": {"enabled": false, "staleTimeout": "1s"}}}))
        .unwrap();
}

#[test]
fn dry_run_caps_and_workspace_retention_are_read() {
    let config = from_value(json!({"scaffolder": {
        "workspaceRetention": "P2D",
        "dryRun": {"maxFiles": 50, "maxBytes": "1048576"},
    }}))
    .unwrap();
    let s = &config.scaffolder;
    assert_eq!(s.workspace_retention, Duration::from_secs(2 * 86_400));
    assert_eq!(
        s.dry_run.limits(),
        DryRunLimits {
            max_files: 50,
            max_bytes: 1 << 20
        }
    );
    let err = error(json!({"scaffolder": {"dryRun": {"maxBytes": "64MiB"}}}));
    assert!(
        err.starts_with("scaffolder.dryRun.maxBytes: ") && err.contains("a whole number"),
        "{err}"
    );
    let err = error(json!({"scaffolder": {"dryRun": {"maxFile": 1}}}));
    assert!(err.contains("unknown field `maxFile`"), "{err}");
}

#[test]
fn external_access_is_parsed() {
    let config = from_value(json!({"backend": {"auth": {
            "dangerouslyDisableDefaultAuthPolicy": "true",
            "externalAccess": [
                {"type": "static", "options": {"token": "abcdefgh", "subject": "ci"}, "accessRestrictions": []},
                {"type": "jwks", "options": {"url": "https://idp/jwks", "algorithm": "RS256", "audience": ["a", "b"], "subjectPrefix": "idp:"}},
            ]
        }}}))
        .unwrap();
    let auth = &config.backend.auth;
    assert!(auth.dangerously_disable_default_auth_policy);
    assert_eq!(
        auth.external_access,
        [
            ExternalAccess::Static(StaticToken {
                token: "abcdefgh".into(),
                subject: "ci".into()
            }),
            ExternalAccess::Jwks(JwksAccess {
                url: "https://idp/jwks".into(),
                issuer: None,
                algorithms: vec!["RS256".into()],
                audience: vec!["a".into(), "b".into()],
                subject_prefix: Some("idp:".into()),
            })
        ]
    );
}

#[test]
fn static_token_error_when_too_short_or_spaced() {
    for (token, expected) in [
        ("short", "at least 8 characters"),
        ("has a space", "whitespace"),
    ] {
        let err = error(json!({"backend": {"auth": {"externalAccess": [
            {"type": "static", "options": {"token": token, "subject": "ci"}}
        ]}}}));
        assert!(
            err.starts_with("backend.auth.externalAccess[0].options.token: "),
            "{err}"
        );
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains(token), "the token leaked: {err}");
    }
    let err = error(json!({"backend": {"auth": {"externalAccess": [
        {"type": "legacy", "options": {"secret": "x"}}
    ]}}}));
    assert!(err.contains("externalAccess[0]"), "{err}");
    assert!(err.contains("expected `static` or `jwks`"), "{err}");
}

#[test]
fn wrong_type_error_names_the_file_and_key_path() {
    let err = error(json!({"backend": {"listen": {"port": "abc"}}}));
    assert!(err.starts_with("backend.listen.port: "), "{err}");
    assert!(err.contains("expected a whole number"), "{err}");

    let err = error(json!({"backend": {"cors": {"credentials": "maybe"}}}));
    assert!(err.starts_with("backend.cors.credentials: "), "{err}");

    // The file named is the one that set the key.
    let base = "scaffolder:\n  concurrentTasksLimit: 4\n";
    let local = "scaffolder:\n  concurrentTasksLimit: [1]\nbackend: {}\n";
    let err = format!(
        "{:#}",
        load_files(&[("base.yaml", base), ("local.yaml", local)], &[]).unwrap_err()
    );
    assert!(
            err.contains("local.yaml: scaffolder.concurrentTasksLimit: invalid type: sequence, expected a whole number"),
            "{err}"
        );
    let err = format!(
        "{:#}",
        load_files(
            &[
                ("base.yaml", "backend:\n  baseUrl: 3\n"),
                ("local.yaml", local)
            ],
            &[]
        )
        .unwrap_err()
    );
    assert!(err.contains("base.yaml: backend.baseUrl: "), "{err}");
}

#[test]
fn unknown_keys_are_ignored() {
    let config = from_value(json!({
        "app": {"title": "x"},
        "catalog": {"locations": []},
        "backend": {"reading": {"allow": []}, "listen": {"port": 1234}},
        "scaffolder": {"EXPERIMENTAL_recoverTasks": true},
    }))
    .unwrap();
    assert_eq!(config.backend.listen.port, 1234);
}

#[test]
fn cors_forms() {
    let config = from_value(json!({"backend": {"cors": {
        "origin": "http://localhost:3000", "methods": "get, post", "credentials": true
    }}}))
    .unwrap();
    assert_eq!(
        config.backend.cors,
        Some(Cors {
            origins: vec!["http://localhost:3000".into()],
            methods: vec!["GET".into(), "POST".into()],
            credentials: true,
        })
    );
    let config = from_value(json!({"backend": {"cors": {"origin": ["*", "https://b"]}}})).unwrap();
    let cors = config.backend.cors.unwrap();
    assert_eq!(cors.origins, ["*", "https://b"]);
    assert_eq!(cors.methods, Cors::default().methods);
}

#[test]
fn integrations_become_scm_integrations() {
    let config = from_value(json!({"integrations": {
            "github": [{"host": "github.com", "token": "ghp_secret"}, {"host": "ghe.example.com", "apiBaseUrl": "https://ghe.example.com/api/v3"}],
            "gitea": [{"host": "gitea.example.com", "password": "pw"}],
            "bitbucketCloud": [{"username": "u"}],
        }}))
        .unwrap();
    let hosts: Vec<(String, ScmKind)> = config
        .integrations
        .scm_integrations()
        .into_iter()
        .map(|i| (i.host, i.kind))
        .collect();
    assert_eq!(
        hosts,
        [
            ("github.com".into(), ScmKind::Github),
            ("ghe.example.com".into(), ScmKind::Github),
            ("gitea.example.com".into(), ScmKind::Gitea),
            ("bitbucket.org".into(), ScmKind::BitbucketCloud),
            ("gitlab.com".into(), ScmKind::Gitlab),
            ("dev.azure.com".into(), ScmKind::Azure),
        ]
    );
    let (kind, github) = config.integrations.find("GitHub.com").unwrap();
    assert_eq!(kind, ScmKind::Github);
    assert_eq!(github.token.as_deref(), Some("ghp_secret"));
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("ghp_secret") && !debug.contains("\"pw\""),
        "{debug}"
    );

    let err = error(json!({"integrations": {"gitea": [{"token": "t"}]}}));
    assert!(
        err.starts_with("integrations.gitea[0].host: required"),
        "{err}"
    );
    let err = error(json!({"integrations": {"github": [{"host": "https://github.com"}]}}));
    assert!(err.contains("without scheme"), "{err}");
}

#[test]
fn plugin_config_values_are_scalars() {
    let err = error(json!({"scaffolder": {"plugins": [
        {"source": "a.wasm", "config": {"hosts": ["a", "b"]}}
    ]}}));
    assert!(
        err.contains("hosts must be a string, number or boolean, found a list"),
        "{err}"
    );
}

#[test]
fn plugin_source_resolves_against_the_config_file() {
    let yaml = r#"
scaffolder:
  plugins:
    - source: plugins/fetch_template.wasm
      digest: sha256:0123456789abcdef0123456789abcdef0123456789ABCDEF0123456789abcdef
      grants:
        outboundHttp: ["https://api.github.com"]
        secrets: [GITHUB_TOKEN]
      limits: { memoryMib: 64, timeoutSecs: 30 }
      config: { region: eu-west-1, port: 5432, backend.baseUrl: "http://override" }
    - source: /abs/other.wasm
  templates: [templates]
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf/app-config.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, yaml).unwrap();
    let config = load_with_env(&[file], &|_| None).unwrap();
    let plugins = &config.scaffolder.plugins;
    assert_eq!(
        plugins[0].source,
        PluginSource::File(dir.path().join("conf/plugins/fetch_template.wasm"))
    );
    assert_eq!(
        plugins[0].digest.as_deref(),
        Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
    );
    assert_eq!(plugins[0].grants.secrets, ["GITHUB_TOKEN"]);
    let settings = BTreeMap::from([
        ("backend.baseUrl".to_owned(), "http://server".to_owned()),
        (
            "backstage.baseUrl".to_owned(),
            "http://backstage".to_owned(),
        ),
    ]);
    let runtime = plugins[0].spec(&settings, &[]).config;
    assert_eq!(
        runtime.config,
        BTreeMap::from([
            ("backend.baseUrl".to_owned(), "http://override".to_owned()),
            (
                "backstage.baseUrl".to_owned(),
                "http://backstage".to_owned()
            ),
            ("port".to_owned(), "5432".to_owned()),
            ("region".to_owned(), "eu-west-1".to_owned()),
        ])
    );
    assert_eq!(runtime.limits.memory_mib, 64);
    assert_eq!(runtime.limits.timeout_secs, 30);
    assert_eq!(
        runtime.limits.max_log_bytes,
        Limits::default().max_log_bytes
    );
    assert_eq!(
        plugins[1].source,
        PluginSource::File("/abs/other.wasm".into())
    );
    assert_eq!(plugins[1].grants, Grants::default());
    assert_eq!(
        config.scaffolder.templates,
        [dir.path().join("conf/templates")]
    );
}

#[test]
fn plugin_entry_errors_name_the_key() {
    let err = error(json!({"scaffolder": {"plugins": [{"source": "a.wasm", "digest": "md5:x"}]}}));
    assert!(err.starts_with("scaffolder.plugins[0].digest: "), "{err}");
    let err = error(json!({"scaffolder": {"plugins": [{"source": "a.wasm", "grant": {}}]}}));
    assert!(err.starts_with("scaffolder.plugins[0]"), "{err}");
    assert!(err.contains("unknown field `grant`"), "{err}");
    let err = error(
        json!({"scaffolder": {"plugins": [{"source": "a.wasm", "grants": {"outboundHTTP": []}}]}}),
    );
    assert!(err.starts_with("scaffolder.plugins[0].grants"), "{err}");
    let err = error(json!({"scaffolder": {"plugins": [{"digest": null}]}}));
    assert!(err.contains("missing field `source`"), "{err}");
}

#[test]
fn secrets_error_when_not_strings() {
    let config = from_value(json!({"scaffolder": {"defaultEnvironment": {
        "parameters": {"region": "eu", "replicas": 3},
        "secrets": {"TOKEN": "s3cr3t-value"},
    }}}))
    .unwrap();
    let env = &config.scaffolder.default_environment;
    assert_eq!(env.parameters["replicas"], json!(3));
    assert_eq!(env.secrets["TOKEN"], json!("s3cr3t-value"));
    assert!(!format!("{config:?}").contains("s3cr3t-value"));

    let err = error(json!({"scaffolder": {"defaultEnvironment": {
        "secrets": {"TOKEN": "ok", "PIN": 12345678}
    }}}));
    assert!(
        err.starts_with(
            "scaffolder.defaultEnvironment.secrets: PIN must be a string, found a number"
        ),
        "{err}"
    );
    assert!(!err.contains("12345678"), "{err}");
}

#[test]
fn task_secrets_key_is_32_bytes_of_base64() {
    let key = "0000000000000000000000000000000000000000000=";
    assert_eq!(
        from_value(json!({}))
            .unwrap()
            .scaffolder
            .task_secrets
            .key
            .map(|k| k.to_base64()),
        None
    );
    let config = from_value(json!({"scaffolder": {"taskSecrets": {"key": key}}})).unwrap();
    let parsed = config.scaffolder.task_secrets.key.as_ref().unwrap();
    assert_eq!(parsed.to_base64(), key);
    assert!(!format!("{config:?}").contains(key), "never printed");

    let err = error(json!({"scaffolder": {"taskSecrets": {"key": "c2hvcnQ="}}}));
    assert!(
        err.starts_with("scaffolder.taskSecrets.key: invalid task secrets key: expected 32 bytes")
            && err.contains("openssl rand -base64 32"),
        "{err}"
    );
    let err = error(json!({"scaffolder": {"taskSecrets": {"Key": key}}}));
    assert!(err.contains("unknown field `Key`"), "{err}");
}

#[test]
fn workspace_store_defaults_to_the_database_on_postgres_and_none_on_sqlite() {
    let settings = from_value(json!({})).unwrap().scaffolder.workspace_store;
    assert_eq!(
        settings.resolve(Backend::Postgres),
        Some(WorkspaceStoreConfig::database())
    );
    assert_eq!(settings.resolve(Backend::Sqlite), None);

    // An explicit type wins over the database's default, and limits apply to it.
    let settings = from_value(json!({"scaffolder": {"workspaceStore": {
        "type": "database", "maxBytes": "1073741824", "maxEntries": 500,
    }}}))
    .unwrap()
    .scaffolder
    .workspace_store;
    let config = settings.resolve(Backend::Sqlite).unwrap();
    assert_eq!(
        (config.backend, config.max_bytes, config.max_entries),
        (WorkspaceBackend::Database, 1 << 30, 500)
    );
    let settings = from_value(json!({"scaffolder": {"workspaceStore": {"type": "none"}}}))
        .unwrap()
        .scaffolder
        .workspace_store;
    assert_eq!(settings.resolve(Backend::Postgres), None);
}

#[test]
fn workspace_store_in_s3_is_read_and_its_secret_never_printed() {
    let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    let config = from_value(json!({"scaffolder": {"workspaceStore": {
        "type": "s3",
        "s3": {
            "bucket": "scaffolder-workspaces",
            "endpoint": "http://127.0.0.1:9000",
            "region": "eu-west-1",
            "accessKeyId": "AKIAEXAMPLE",
            "secretAccessKey": secret,
            "prefix": "prod",
            "allowHttp": "true",
        },
    }}}))
    .unwrap();
    let store = config
        .scaffolder
        .workspace_store
        .resolve(Backend::Postgres)
        .unwrap();
    assert_eq!(
        store,
        WorkspaceStoreConfig::s3(S3Config {
            bucket: "scaffolder-workspaces".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu-west-1".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some(secret.into()),
            prefix: "prod".into(),
            allow_http: true,
        })
    );
    assert_eq!(store.max_bytes, DEFAULT_S3_MAX_BYTES);
    for debug in [format!("{config:?}"), format!("{store:?}")] {
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains("scaffolder-workspaces"), "{debug}");
    }
}

#[test]
fn workspace_store_errors_name_the_key() {
    let cases = [
        (
            json!({"type": "disk"}),
            "scaffolder.workspaceStore.type: unknown variant `disk`, expected one of `database`, `s3`, `none`",
        ),
        (
            json!({"type": "s3"}),
            "scaffolder.workspaceStore.s3: required when scaffolder.workspaceStore.type is s3",
        ),
        (
            json!({"type": "s3", "s3": {"region": "eu-west-1"}}),
            "scaffolder.workspaceStore.s3.bucket: required when scaffolder.workspaceStore.type is s3",
        ),
        (
            json!({"s3": {"bucket": "b"}}),
            "scaffolder.workspaceStore.s3: set, but scaffolder.workspaceStore.type is not set",
        ),
        (
            json!({"type": "database", "s3": {"bucket": "b"}}),
            "scaffolder.workspaceStore.s3: set, but scaffolder.workspaceStore.type is database",
        ),
        (
            json!({"type": "s3", "s3": {"bucket": "b", "accessKeyId": "AKIAEXAMPLE"}}),
            "scaffolder.workspaceStore.s3.secretAccessKey: required with accessKeyId",
        ),
        (
            json!({"type": "s3", "s3": {"bucket": "b", "secretAccessKey": "hidden-secret"}}),
            "scaffolder.workspaceStore.s3.accessKeyId: required with secretAccessKey",
        ),
        (
            json!({"type": "s3", "s3": {"bucket": "b", "endpoint": "http://minio:9000"}}),
            "scaffolder.workspaceStore.s3.endpoint: `http://minio:9000` is plain HTTP",
        ),
        (
            json!({"type": "s3", "s3": {"bucket": "b", "endpoint": "minio:9000"}}),
            "scaffolder.workspaceStore.s3.endpoint: expected an https:// URL",
        ),
        (
            json!({"type": "s3", "s3": {"bucket": "b", "secretAccesKey": "hidden-secret"}}),
            "scaffolder.workspaceStore.s3.secretAccesKey: unknown field `secretAccesKey`",
        ),
        (
            json!({"maxBytes": "256MiB"}),
            "scaffolder.workspaceStore.maxBytes: invalid value: string \"256MiB\", expected a whole number",
        ),
        (
            json!({"maxBytes": 0}),
            "scaffolder.workspaceStore.maxBytes: must be at least 1",
        ),
        (
            json!({"maxEntries": 0}),
            "scaffolder.workspaceStore.maxEntries: must be at least 1",
        ),
        (
            json!({"maxEntry": 10}),
            "scaffolder.workspaceStore.maxEntry: unknown field `maxEntry`",
        ),
    ];
    for (store, expected) in cases {
        let err = error(json!({"scaffolder": {"workspaceStore": store}}));
        assert!(err.starts_with(expected), "{store}: {err}");
        assert!(!err.contains("hidden-secret"), "{err}");
    }
}

#[test]
fn actions_registry_has_safe_defaults_and_rejects_unknown_keys() {
    let config = from_value(json!({"scaffolder": {"actionsRegistry": {}}})).unwrap();
    assert_eq!(
        config.scaffolder.actions_registry,
        Some(ActionsRegistryConfig {
            plugin_id: "wasm-actions".into(),
            allowed_callers: vec!["scaffolder".into()],
            actions: Vec::new(),
        })
    );
    assert_eq!(load(&[]).unwrap().scaffolder.actions_registry, None);
    let err = error(json!({"scaffolder": {"actionsRegistry": {"callers": ["x"]}}}));
    assert!(
        err.starts_with("scaffolder.actionsRegistry.callers: unknown field `callers`"),
        "{err}"
    );
}

#[test]
fn yaml_errors_name_the_file_and_line() {
    let err = format!(
        "{:#}",
        load_files(&[("bad.yaml", "a: [1, 2\nb: 3\n")], &[]).unwrap_err()
    );
    assert!(err.contains("bad.yaml:"), "{err}");
    let err = format!(
        "{:#}",
        load_files(&[("list.yaml", "- 1\n")], &[]).unwrap_err()
    );
    assert!(err.contains("list.yaml: expected a mapping"), "{err}");
}
