//! Plugins through a real OCI registry (Debian's `docker-registry` on loopback):
//! `scaffolder plugin publish`, a server loading a plugin by tag with a digest pin and
//! running a template with it, a changed build pushed under the same tag refused, pulls
//! by manifest digest, the cache standing in for a stopped registry, and signatures.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, post, text, wait_for_event};
use scaffolder_test_artifacts::FRIENDLY_GUEST;
use scaffolder_test_artifacts::registry::Registry;
use serde_json::{Value as Json, json};

fn scaffolder(args: &[&str]) -> Output {
    common::run_scaffolder(Path::new("."), args)
}

/// `plugin publish FILE REF --insecure`; returns (manifest digest, component digest).
fn publish(file: &Path, reference: &str) -> (String, String) {
    let output = scaffolder(&[
        "plugin",
        "publish",
        file.to_str().unwrap(),
        reference,
        "--insecure",
    ]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let digest_after = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {stdout}"))
            .trim()
            .to_owned()
    };
    (digest_after("manifest:"), digest_after("component:"))
}

/// A configuration loading the plugin from `source`, pinned to `digest`.
fn config(dir: &Path, name: &str, source: &str, digest: &str) -> String {
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            "scaffolder:\n  plugins:\n    - source: {source}\n      digest: {digest}\n      insecure: true\n"
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_owned()
}

const TEMPLATE: &str = "apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: from-registry
spec:
  type: test
  steps:
    - id: write
      name: Write a file
      action: friendly:write-file
      input: { path: hello.txt, content: from the registry }
";

/// `scaffolder dry-run` of the template with `config`, as JSON.
fn dry_run(work: &Path, data: &Path, config: &str) -> Output {
    scaffolder(&[
        "dry-run",
        work.join("templates/template.yaml").to_str().unwrap(),
        "--config",
        config,
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ])
}

/// A fresh registry, and a directory with `templates/template.yaml` using the plugin.
fn setup() -> (Registry, tempfile::TempDir) {
    (Registry::start(), work_dir())
}

/// A directory with `templates/template.yaml` using the friendly plugin.
fn work_dir() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("templates")).unwrap();
    std::fs::write(work.path().join("templates/template.yaml"), TEMPLATE).unwrap();
    work
}

/// `plugin keygen --key <dir>/<name>.key --pub <dir>/<name>.pub`.
fn keygen(dir: &Path, name: &str, public: &str) -> Output {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(public);
    scaffolder(&[
        "plugin",
        "keygen",
        "--key",
        key.to_str().unwrap(),
        "--pub",
        public.to_str().unwrap(),
    ])
}

const DEBUG_TEMPLATE: &str = "apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: debug-from-registry
spec:
  type: test
  steps:
    - id: say
      name: Say something
      action: debug:log
      input: { message: logged by the published build }
";

/// The acceptance path: a built-in plugin pushed with the CLI, a server pointed at it by
/// tag with a digest pin (it replaces the embedded build) runs a template with it; the
/// same tag moved to a build with one byte changed is refused, naming both digests.
#[test]
fn a_pinned_plugin_from_a_registry_runs_and_a_changed_build_is_refused() {
    let (registry, work) = setup();
    let work = work.path();
    std::fs::write(work.join("templates/debug.yaml"), DEBUG_TEMPLATE).unwrap();
    let debug = scaffolder_builtins::plugin("builtin-debug").unwrap();
    let original = work.join("debug.wasm");
    std::fs::write(&original, debug.bytes).unwrap();
    let reference = format!("{}/plugins/debug:1.0", registry.address);
    let (manifest, component) = publish(&original, &reference);
    assert!(manifest.starts_with("sha256:") && component.starts_with("sha256:"));
    assert_ne!(manifest, component);

    // The registry holds the community Wasm layout.
    let manifest_json: Json = reqwest::blocking::Client::new()
        .get(format!(
            "http://{}/v2/plugins/debug/manifests/1.0",
            registry.address
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        manifest_json["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest_json["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(manifest_json["layers"][0]["digest"], component.as_str());
    assert_eq!(
        manifest_json["annotations"]["dev.scaffolder.plugin.actions"],
        "debug:log,debug:wait"
    );

    let data = work.join("data");
    let by_tag = config(
        work,
        "by-tag.yaml",
        &format!("oci://{reference}"),
        &component,
    );
    let templates = work.join("templates");
    let serve_args = [
        "--config",
        by_tag.as_str(),
        "--templates",
        templates.to_str().unwrap(),
    ];
    let mut server = Server::spawn(&data, &serve_args, &[]);
    let output = server.output();
    assert!(
        output.contains("plugin resolved") && output.contains(&manifest),
        "{output}"
    );
    assert!(
        output.contains("the built-in plugin is replaced by the configured"),
        "{output}"
    );
    let (status, created) = post(
        &server.base,
        "/v2/tasks",
        json!({ "templateRef": "template:default/debug-from-registry", "values": {} }),
    );
    assert_eq!(status, 201, "{created}");
    let events = wait_for_event(&server.base, created["id"].as_str().unwrap(), |e| {
        e["type"] == "completion"
    });
    assert_eq!(
        events.last().unwrap()["body"]["message"],
        "Run completed with status: completed",
        "{events:#?}"
    );
    let logged = events.iter().any(|e| {
        e["body"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("logged by the published build"))
    });
    assert!(logged, "{events:#?}");
    server.terminate();

    // One byte changed, pushed under the same tag: the pinned server refuses it.
    let mut changed = debug.bytes.to_vec();
    let description = b"Writes a message into the log";
    let at = changed
        .windows(description.len())
        .position(|w| w == description)
        .expect("the description is in the component");
    changed[at] = b'w';
    let changed_file = work.join("changed.wasm");
    std::fs::write(&changed_file, &changed).unwrap();
    let (_, changed_component) = publish(&changed_file, &reference);
    assert_ne!(changed_component, component);
    let mut args = vec!["serve", "--port", "0", "--data-dir", data.to_str().unwrap()];
    args.extend(serve_args);
    let refused = scaffolder(&args);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("its component digest is {changed_component}"))
            && stderr.contains(&format!("the configuration pins {component}")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was compiled"), "{stderr}");
}

/// Pulled components are cached by digest: a digest reference loads with the registry
/// stopped, and so does a pinned tag (with a warning).
#[test]
fn cached_plugins_need_no_registry() {
    let (mut registry, work) = setup();
    let work = work.path();
    let data = work.join("data");
    let reference = format!("{}/plugins/friendly:1.0", registry.address);
    let (manifest, component) = publish(Path::new(FRIENDLY_GUEST), &reference);
    let by_tag = config(
        work,
        "by-tag.yaml",
        &format!("oci://{reference}"),
        &component,
    );
    let by_digest = config(
        work,
        "by-digest.yaml",
        &format!("oci://{}/plugins/friendly@{manifest}", registry.address),
        &component,
    );
    for config in [&by_tag, &by_digest] {
        let output = dry_run(work, &data, config);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    registry.stop();
    let output = dry_run(work, &data, &by_digest);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body: Json = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["directoryContents"][0]["path"], "hello.txt");
    let output = dry_run(work, &data, &by_tag);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("using the cached component the pin names"));

    // An unpinned tag cannot be resolved without the registry: refused, saying why.
    let unpinned = work.join("unpinned.yaml");
    std::fs::write(
        &unpinned,
        format!("scaffolder:\n  plugins:\n    - source: oci://{reference}\n      insecure: true\n"),
    )
    .unwrap();
    let output = dry_run(work, &data, unpinned.to_str().unwrap());
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("cannot read the manifest"),
        "{}",
        text(&output.stderr)
    );
}

/// A registry speaking plain HTTP without `--insecure`, and a reference that is not one,
/// are refused with what to do.
#[test]
fn publishing_mistakes_say_what_to_do() {
    let registry = Registry::start();
    let reference = format!("{}/plugins/friendly:1.0", registry.address);
    let output = scaffolder(&["plugin", "publish", FRIENDLY_GUEST, &reference]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("needs --insecure"),
        "{}",
        text(&output.stderr)
    );

    let output = scaffolder(&[
        "plugin",
        "publish",
        FRIENDLY_GUEST,
        "Not A Reference",
        "--insecure",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("host[:port]/name:tag"),
        "{}",
        text(&output.stderr)
    );

    let not_wasm = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_wasm.path(), b"not a component").unwrap();
    let output = scaffolder(&[
        "plugin",
        "publish",
        not_wasm.path().to_str().unwrap(),
        &reference,
        "--insecure",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("nothing was pushed"),
        "{}",
        text(&output.stderr)
    );
}

/// A configuration that trusts `keys` (public key files) for every OCI plugin, loading
/// `source` (unpinned).
fn signed_config(
    dir: &Path,
    name: &str,
    source: &str,
    keys: &[&str],
    signed_by: &[&str],
) -> String {
    let file = dir.join(name);
    let list = |keys: &[&str]| format!("[{}]", keys.join(", "));
    let mut text = format!(
        "scaffolder:\n  pluginSignatures:\n    keys: {}\n  plugins:\n    - source: {source}\n      insecure: true\n",
        list(keys)
    );
    if !signed_by.is_empty() {
        text.push_str(&format!("      signedBy: {}\n", list(signed_by)));
    }
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_owned()
}

/// Signatures in cosign's layout: a plugin required to be signed is refused unsigned or
/// signed by an untrusted key, each with a message naming the keys, and loads once a
/// trusted key signs it; `signedBy` narrows the keys per plugin; verified signatures are
/// kept with the cache for a registry that is down.
#[test]
fn signatures_are_required_verified_and_cached() {
    let (mut registry, work) = setup();
    let work = work.path();
    let data = work.join("data");
    let path = |name: &str| work.join(name).to_str().unwrap().to_owned();
    for name in ["team", "other"] {
        let output = keygen(work, name, &format!("{name}.pub"));
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let again = keygen(work, "team", "new.pub");
    assert!(!again.status.success(), "keygen never overwrites a key");

    let reference = format!("{}/plugins/signed:1.0", registry.address);
    let (manifest, _) = publish(Path::new(FRIENDLY_GUEST), &reference);
    let trusting_team = signed_config(
        work,
        "team.yaml",
        &format!("oci://{reference}"),
        &["team.pub"],
        &[],
    );

    // Unsigned: refused, and the refusal is logged.
    let output = dry_run(work, &data, &trusting_team);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("it is not signed") && stderr.contains("scaffolder plugin sign"),
        "{stderr}"
    );
    assert!(stderr.contains("plugin refused"), "{stderr}");

    // Signed by a key the configuration does not trust: refused.
    let sign = |key: &str, reference: &str| {
        let output = scaffolder(&[
            "plugin",
            "sign",
            reference,
            "--key",
            &path(key),
            "--insecure",
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
    };
    sign("other.key", &reference);
    let output = dry_run(work, &data, &trusting_team);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("none of its 1 signature(s) on manifest"),
        "{}",
        text(&output.stderr)
    );

    // Signed by the trusted key too: it loads.
    sign("team.key", &reference);
    let output = dry_run(work, &data, &trusting_team);
    assert!(output.status.success(), "{}", text(&output.stderr));

    // The signature image is where cosign looks for it.
    let hex = manifest.strip_prefix("sha256:").unwrap();
    let signature_manifest: Json = reqwest::blocking::Client::new()
        .get(format!(
            "http://{}/v2/plugins/signed/manifests/sha256-{hex}.sig",
            registry.address
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let layers = signature_manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "both signatures are kept");
    assert!(layers.iter().all(|l| {
        l["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
            && l["annotations"]["dev.cosignproject.cosign/signature"].is_string()
    }));

    // `signedBy` replaces the global keys for one plugin.
    let only_other = signed_config(
        work,
        "other.yaml",
        &format!("oci://{reference}"),
        &["team.pub"],
        &["other.pub"],
    );
    assert!(dry_run(work, &data, &only_other).status.success());

    // publish --sign signs what it pushed.
    let second = format!("{}/plugins/signed:2.0", registry.address);
    let output = scaffolder(&[
        "plugin",
        "publish",
        FRIENDLY_GUEST,
        &second,
        "--insecure",
        "--sign",
        &path("team.key"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("signed by: sha256:"));
    let second_config = signed_config(
        work,
        "second.yaml",
        &format!("oci://{second}"),
        &["team.pub"],
        &["other.pub"],
    );
    let output = dry_run(work, &data, &second_config);
    assert!(!output.status.success(), "other.pub did not sign 2.0");
    let by_digest = signed_config(
        work,
        "digest.yaml",
        &format!("oci://{}/plugins/signed@{manifest}", registry.address),
        &["team.pub"],
        &[],
    );
    assert!(dry_run(work, &data, &by_digest).status.success());

    // With the registry down, the cached signature is verified again and suffices.
    registry.stop();
    let output = dry_run(work, &data, &by_digest);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

const SLEEP_TEMPLATE: &str = "apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: sleepy
spec:
  type: test
  steps:
    - id: sleep
      name: Sleep
      action: friendly:sleep
      input: { millis: 4000 }
    - id: noop
      name: Nothing
      action: friendly:noop
";

/// The digests named by a task's `processing` events.
fn step_plugins(events: &[Json]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["body"]["status"] == "processing")
        .map(|e| {
            e["body"]["plugin"]["digest"]
                .as_str()
                .unwrap_or("none")
                .to_owned()
        })
        .collect()
}

/// Waits until the server has printed `text` `times` times.
fn wait_for_output(server: &Server, text: &str, times: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.output().matches(text).count() < times {
        assert!(
            std::time::Instant::now() < deadline,
            "no '{text}' in:\n{}",
            server.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A changed source and pin in the configuration loads the new build for tasks that start
/// afterwards, without a restart; a task already running finishes on its build, and each
/// step's `processing` event names the build that ran it. A reload that fails keeps the
/// plugins loaded before. `plugin list` shows what a server runs.
#[test]
fn plugins_reload_when_the_configuration_changes() {
    let (registry, work) = setup();
    let work = work.path();
    std::fs::write(work.join("templates/sleepy.yaml"), SLEEP_TEMPLATE).unwrap();
    let first_ref = format!("{}/plugins/friendly:1.0", registry.address);
    let (_, first) = publish(Path::new(FRIENDLY_GUEST), &first_ref);
    let mut changed = std::fs::read(FRIENDLY_GUEST).unwrap();
    let at = changed
        .windows(13)
        .position(|w| w == b"Does nothing.")
        .unwrap();
    changed[at + 12] = b'!';
    std::fs::write(work.join("changed.wasm"), &changed).unwrap();
    let second_ref = format!("{}/plugins/friendly:2.0", registry.address);
    let (second_manifest, second) = publish(&work.join("changed.wasm"), &second_ref);

    let config_file = config(
        work,
        "app-config.yaml",
        &format!("oci://{first_ref}"),
        &first,
    );
    let templates = work.join("templates");
    let server = Server::spawn(
        &work.join("data"),
        &[
            "--config",
            &config_file,
            "--templates",
            templates.to_str().unwrap(),
        ],
        &[],
    );
    let start = || {
        let (status, created) = post(
            &server.base,
            "/v2/tasks",
            json!({ "templateRef": "template:default/sleepy", "values": {} }),
        );
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().to_owned()
    };
    let before = start();
    wait_for_event(&server.base, &before, |e| {
        e["body"]["stepId"] == "sleep" && e["body"]["status"] == "processing"
    });

    // Point the configuration at 2.0 while the first task sleeps.
    config(
        work,
        "app-config.yaml",
        &format!("oci://{second_ref}"),
        &second,
    );
    wait_for_output(&server, "plugins reloaded", 1);
    let (_, listed) = common::get(&server.base, "/v2/plugins");
    let friendly = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["actions"]
                .as_array()
                .unwrap()
                .contains(&json!("friendly:noop"))
        })
        .unwrap()
        .clone();
    assert_eq!(friendly["digest"], second.as_str(), "{listed}");
    assert_eq!(friendly["manifestDigest"], second_manifest.as_str());
    assert_eq!(friendly["source"], format!("oci://{second_ref}").as_str());
    let after = start();

    let completed = |id: &str| {
        let events = wait_for_event(&server.base, id, |e| e["type"] == "completion");
        assert_eq!(
            events.last().unwrap()["body"]["message"],
            "Run completed with status: completed",
            "{events:#?}"
        );
        events
    };
    assert_eq!(
        step_plugins(&completed(&before)),
        [first.clone(), first.clone()]
    );
    assert_eq!(
        step_plugins(&completed(&after)),
        [second.clone(), second.clone()]
    );

    // A configuration that cannot be loaded (a pin no build has) keeps 2.0.
    config(
        work,
        "app-config.yaml",
        &format!("oci://{second_ref}"),
        &format!("sha256:{}", "0".repeat(64)),
    );
    wait_for_output(&server, "reloading the plugins failed", 1);
    let (_, listed) = common::get(&server.base, "/v2/plugins");
    assert!(listed.to_string().contains(&second), "{listed}");

    let root = server.base.trim_end_matches("/api/scaffolder");
    let output = scaffolder(&["plugin", "list", "--server", root]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains(&format!("oci://{second_ref}")), "{stdout}");
    assert!(
        stdout.contains(&format!("manifest:  {second_manifest}")),
        "{stdout}"
    );
    assert!(stdout.contains("builtin:builtin-fetch"), "{stdout}");
}

/// `https://` sources (plain `http://` on loopback with `insecure: true`): pinned, cached
/// by digest so a second start downloads nothing, refused on a wrong pin, over plain HTTP
/// without `insecure`, and where signatures are required.
#[test]
fn plugins_from_a_url_are_pinned_and_cached() {
    let work = work_dir();
    let work = work.path();
    let bytes = std::fs::read(FRIENDLY_GUEST).unwrap();
    let digest = {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(&bytes);
        format!(
            "sha256:{}",
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let (base, served) = scaffolder_test_artifacts::serve_bytes(bytes);
    let url = format!("{base}/plugins/friendly.wasm");
    let data = work.join("data");
    let served = || served.load(std::sync::atomic::Ordering::SeqCst);

    let pinned = config(work, "pinned.yaml", &url, &digest);
    for expected_downloads in [1, 1] {
        let output = dry_run(work, &data, &pinned);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(
            served(),
            expected_downloads,
            "the second run uses the cache"
        );
    }

    let wrong = config(
        work,
        "wrong.yaml",
        &url,
        &format!("sha256:{}", "1".repeat(64)),
    );
    let output = dry_run(work, &data, &wrong);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains(&format!("its component digest is {digest}")));

    let plain = work.join("plain.yaml");
    std::fs::write(
        &plain,
        format!("scaffolder:\n  plugins:\n    - source: {url}\n"),
    )
    .unwrap();
    let output = dry_run(work, &data, plain.to_str().unwrap());
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("is plain HTTP"),
        "{}",
        text(&output.stderr)
    );

    assert!(keygen(work, "team", "team.pub").status.success());
    let signed = signed_config(work, "signed.yaml", &url, &["team.pub"], &[]);
    let output = dry_run(work, &data, &signed);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("requires signed plugins"),
        "{}",
        text(&output.stderr)
    );
}

/// A credential helper the docker configuration names for the registry (as ECR, GCR and
/// ACR logins do) is asked for the credentials, with the registry's address; one that
/// fails is reported, and the registry is then asked anonymously.
#[test]
fn registry_credentials_come_from_docker_credential_helpers() {
    let registry = Registry::start();
    let reference = format!("{}/plugins/friendly:helper", registry.address);
    let dir = tempfile::tempdir().unwrap();
    let asked = dir.path().join("asked");
    let helper = |name: &str, script: &str| {
        let file = dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&file, script).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    helper(
        "works",
        &format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\n{{ cat; echo; }} >> '{}'\nprintf '{{\"Username\":\"ci\",\"Secret\":\"s3cret\"}}'\n",
            asked.display()
        ),
    );
    helper(
        "fails",
        "#!/bin/sh\necho 'no credentials in the keychain' >&2\nexit 1\n",
    );
    let publish_with = |helper: &str| {
        std::fs::write(
            dir.path().join("config.json"),
            json!({ "credHelpers": { registry.address.clone(): helper } }).to_string(),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new(env!("CARGO_BIN_EXE_scaffolder"))
            .args([
                "plugin",
                "publish",
                FRIENDLY_GUEST,
                &reference,
                "--insecure",
            ])
            .env("DOCKER_CONFIG", dir.path())
            .env("PATH", path)
            .env_remove("SCAFFOLDER_REGISTRY_USERNAME")
            .env_remove("SCAFFOLDER_REGISTRY_PASSWORD")
            .output()
            .unwrap()
    };

    let output = publish_with("works");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let asked = std::fs::read_to_string(&asked).unwrap();
    assert!(
        asked.lines().all(|line| line == registry.address) && !asked.is_empty(),
        "the helper was asked for {asked:?}, not {}",
        registry.address
    );
    assert!(!text(&output.stderr).contains("s3cret"));

    let output = publish_with("fails");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(&format!(
            "cannot read the credentials for {} from the docker configuration",
            registry.address
        )),
        "{}",
        text(&output.stderr)
    );
}
