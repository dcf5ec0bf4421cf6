use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use scaffolder_store::testing::TestDatabase;
use scaffolder_store::{Backend, Lease, NewTask, Store};
use serde_json::{Map, json};

use super::*;

const MARKER: &str = "outside-the-workspace-7f3a";

/// Every entry under `root` as (path, what): `dir 755`, `file 644 <content>`,
/// `link -> <target>`; read without following links.
fn listing(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for item in std::fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                pending.push(path.clone());
                format!("dir {mode:o}")
            } else if meta.is_file() {
                format!("file {mode:o} {}", std::fs::read_to_string(&path).unwrap())
            } else {
                "special".to_owned()
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

fn write(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A workspace with files, an executable, a read-only directory, a link climbing out
/// to a file holding `MARKER`, a link to a directory outside and a fifo; and the
/// directory outside.
fn planted() -> (tempfile::TempDir, tempfile::TempDir) {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), MARKER).unwrap();
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("task");
    std::fs::create_dir_all(root.join("src/.git")).unwrap();
    write(&root.join("README.md"), "# hello", 0o644);
    write(&root.join("src/run.sh"), "#!/bin/sh", 0o755);
    write(&root.join("src/.git/HEAD"), "ref: refs/heads/main", 0o644);
    std::fs::create_dir(root.join("locked")).unwrap();
    write(&root.join("locked/kept.txt"), "kept", 0o400);
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o555)).unwrap();
    symlink("../README.md", root.join("src/readme-link")).unwrap();
    symlink(outside.path().join("secret.txt"), root.join("passwd")).unwrap();
    symlink(outside.path(), root.join("outside")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    (parent, outside)
}

/// An empty workspace `t` in a directory of its own.
fn empty_workspace() -> (tempfile::TempDir, std::path::PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("t");
    std::fs::create_dir(&root).unwrap();
    (parent, root)
}

fn workspace(parent: &tempfile::TempDir) -> std::path::PathBuf {
    parent.path().join("task")
}

fn limits() -> WorkspaceLimits {
    WorkspaceLimits {
        max_bytes: DEFAULT_DATABASE_MAX_BYTES,
        max_entries: DEFAULT_MAX_ENTRIES,
        s3: false,
    }
}

fn scan_of(root: &Path, previous: Option<&Manifest>) -> Scan {
    let known = previous
        .map(|m| m.digests().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    manifest::scan(
        root,
        previous,
        &known,
        &limits(),
        tempfile::tempfile().unwrap(),
    )
    .unwrap()
}

use manifest::Scan;

#[test]
fn the_walk_lists_links_with_their_target_and_never_follows_them() {
    let (parent, outside) = planted();
    let scan = scan_of(&workspace(&parent), None);
    let entries: Vec<(&str, String)> = scan
        .manifest
        .entries
        .iter()
        .map(|e| {
            let what = match &e.kind {
                EntryKind::Dir => format!("dir {:o}", e.mode),
                EntryKind::File { size, .. } => format!("file {:o} {size}", e.mode),
                EntryKind::Symlink { target } => format!("link -> {target}"),
            };
            (e.path.as_str(), what)
        })
        .collect();
    let outside_dir = outside.path().display().to_string();
    assert_eq!(
        entries,
        [
            ("README.md", "file 644 7".to_owned()),
            ("locked", "dir 555".to_owned()),
            ("locked/kept.txt", "file 400 4".to_owned()),
            ("outside", format!("link -> {outside_dir}")),
            ("passwd", format!("link -> {outside_dir}/secret.txt")),
            ("src", "dir 755".to_owned()),
            ("src/.git", "dir 755".to_owned()),
            ("src/.git/HEAD", "file 644 20".to_owned()),
            ("src/readme-link", "link -> ../README.md".to_owned()),
            ("src/run.sh", "file 755 9".to_owned()),
        ],
        "no fifo, nothing from outside"
    );
    let mut spooled = String::new();
    let mut spool = scan.spool;
    spool.seek(std::io::SeekFrom::Start(0)).unwrap();
    std::io::Read::read_to_string(&mut spool, &mut spooled).unwrap();
    assert!(!spooled.contains(MARKER), "nothing read through a link");
    assert_eq!(scan.uploads.len(), 4, "one upload per distinct content");
}

use std::io::Seek;

#[test]
fn planted_manifests_are_refused() {
    let digest = "0".repeat(64);
    let file = |path: &str| json!({ "path": path, "mode": 420, "kind": "file", "size": 1, "mtime_ns": 0, "digest": digest });
    let dir = |path: &str| json!({ "path": path, "mode": 493, "kind": "dir" });
    let link =
        |path: &str| json!({ "path": path, "mode": 511, "kind": "symlink", "target": "/etc" });
    let cases = [
        (vec![file("../escape")], "invalid path \"../escape\""),
        (vec![file("/etc/passwd")], "invalid path \"/etc/passwd\""),
        (
            vec![dir("a"), file("a/../../x")],
            "invalid path \"a/../../x\"",
        ),
        (vec![dir("a"), file("a//x")], "invalid path \"a//x\""),
        (vec![file("./x")], "invalid path \"./x\""),
        (
            vec![link("etc"), file("etc/passwd")],
            "\"etc/passwd\" is not under a directory listed before it",
        ),
        (
            vec![file("x/y")],
            "\"x/y\" is not under a directory listed before it",
        ),
        (vec![file("x"), file("x")], "\"x\" is listed twice"),
        (
            vec![
                json!({ "path": "x", "mode": 420, "kind": "file", "size": 1, "mtime_ns": 0, "digest": "../../other-task/x" }),
            ],
            "\"x\" has digest \"../../other-task/x\"",
        ),
        (
            vec![json!({ "path": "x", "mode": 0o104755, "kind": "dir" })],
            "\"x\" has mode 104755",
        ),
    ];
    for (entries, expected) in cases {
        let text = json!({ "version": 1, "entries": entries }).to_string();
        assert_eq!(
            Manifest::parse(&text, &limits()).unwrap_err(),
            expected,
            "{text}"
        );
    }
    let fine = json!({ "version": 1, "entries": [dir("a"), file("a/x"), link("l")] });
    Manifest::parse(&fine.to_string(), &limits()).unwrap();
}

/// A store on `backend` with one claimed task `t`.
async fn claimed(backend: Backend) -> (TestDatabase, Store, Lease) {
    let database = TestDatabase::new(backend).await;
    let store = database.connect().await.unwrap();
    store
        .create_task(NewTask {
            id: "t".into(),
            spec: scaffolder_store::testing::empty_spec(),
            created_by: None,
            secrets: Map::new(),
        })
        .await
        .unwrap();
    let lease = store.claim_task().await.unwrap().unwrap().lease;
    (database, store, lease)
}

/// Save, restore elsewhere, change, save incrementally, restore over a stale copy,
/// remove: the round trip every backend must pass.
async fn round_trip(workspaces: &WorkspaceStore, store: &Store, lease: &Lease) {
    let (parent, outside) = planted();
    let root = workspace(&parent);
    let before = listing(&root);
    let first = workspaces.save(lease, &root, None).await.unwrap();
    assert_eq!(workspaces.uploads(), 4);

    let elsewhere = tempfile::tempdir().unwrap();
    let restored_dir = elsewhere.path().join("t");
    let restored = workspaces
        .restore("t", &restored_dir)
        .await
        .unwrap()
        .expect("a saved workspace");
    assert_eq!(restored, first);
    let mut expected = before.clone();
    expected.retain(|(path, _)| path != "pipe");
    assert_eq!(
        listing(&restored_dir),
        expected,
        "the same tree, modes and links"
    );
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    assert_eq!(
        mtime(&restored_dir.join("src/run.sh")),
        mtime(&root.join("src/run.sh"))
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        MARKER,
        "nothing written through a link"
    );

    // The next step changes one file, adds one, removes one.
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(root.join("locked/kept.txt")).unwrap();
    write(&root.join("README.md"), "# changed", 0o644);
    write(&root.join("src/new.txt"), "#!/bin/sh", 0o600);
    let second = workspaces.save(lease, &root, Some(&first)).await.unwrap();
    assert_eq!(
        workspaces.uploads(),
        5,
        "only the changed content is uploaded (new.txt's content is run.sh's)"
    );
    let again = workspaces.save(lease, &root, Some(&second)).await.unwrap();
    assert_eq!(again, second);
    assert_eq!(workspaces.uploads(), 5, "nothing changed, nothing uploaded");

    // The stale copy gets exactly the new tree: kept.txt and a stray file removed.
    std::fs::write(restored_dir.join("stray.txt"), "stray").unwrap();
    workspaces.restore("t", &restored_dir).await.unwrap();
    let mut expected = listing(&root);
    expected.retain(|(path, _)| path != "pipe");
    assert_eq!(listing(&restored_dir), expected);

    workspaces.remove("t").await.unwrap();
    assert_eq!(store.workspace_manifest("t").await.unwrap(), None);
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        workspaces
            .restore("t", &empty.path().join("t"))
            .await
            .unwrap(),
        None
    );
    assert!(!empty.path().join("t").exists());
}

#[tokio::test]
async fn round_trip_in_sqlite() {
    let (database, store, lease) = claimed(Backend::Sqlite).await;
    let workspaces = WorkspaceStore::new(store.clone(), &WorkspaceStoreConfig::database()).unwrap();
    round_trip(&workspaces, &store, &lease).await;
    assert!(store.workspace_blob_digests("t").await.unwrap().is_empty());
    store.close().await;
    database.finish().await;
}

#[tokio::test]
async fn round_trip_in_postgres() {
    let (database, store, lease) = claimed(Backend::Postgres).await;
    let workspaces = WorkspaceStore::new(store.clone(), &WorkspaceStoreConfig::database()).unwrap();
    round_trip(&workspaces, &store, &lease).await;
    assert!(store.workspace_blob_digests("t").await.unwrap().is_empty());
    store.close().await;
    database.finish().await;
}

fn s3_config(prefix: &str) -> WorkspaceStoreConfig {
    let server = scaffolder_test_artifacts::s3_server::s3_server();
    WorkspaceStoreConfig::s3(S3Config {
        bucket: scaffolder_test_artifacts::s3_server::BUCKET.into(),
        endpoint: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(scaffolder_test_artifacts::s3_server::ACCESS_KEY_ID.into()),
        secret_access_key: Some(scaffolder_test_artifacts::s3_server::SECRET_ACCESS_KEY.into()),
        prefix: prefix.into(),
        allow_http: true,
    })
}

#[tokio::test]
async fn round_trip_in_s3() {
    let (database, store, lease) = claimed(Backend::Sqlite).await;
    let prefix = format!("round-trip-{}", uuid::Uuid::new_v4());
    let workspaces = WorkspaceStore::new(store.clone(), &s3_config(&prefix)).unwrap();
    round_trip(&workspaces, &store, &lease).await;
    let Blobs::S3(s3) = &workspaces.inner.blobs else {
        unreachable!()
    };
    assert_eq!(s3.count("t").await, 0, "remove deleted every object");
    store.close().await;
    database.finish().await;
}

#[tokio::test]
async fn a_big_file_travels_in_chunks_and_parts() {
    let (database, store, lease) = claimed(Backend::Sqlite).await;
    let prefix = format!("big-{}", uuid::Uuid::new_v4());
    let content: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
    for config in [WorkspaceStoreConfig::database(), s3_config(&prefix)] {
        let workspaces = WorkspaceStore::new(store.clone(), &config).unwrap();
        let (_parent, root) = empty_workspace();
        std::fs::write(root.join("big.bin"), &content).unwrap();
        workspaces.save(&lease, &root, None).await.unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        workspaces
            .restore("t", &elsewhere.path().join("t"))
            .await
            .unwrap();
        assert!(std::fs::read(elsewhere.path().join("t/big.bin")).unwrap() == content);
        workspaces.remove("t").await.unwrap();
    }
    store.close().await;
    database.finish().await;
}

#[tokio::test]
async fn unchanged_size_and_time_means_the_file_is_not_read_again() {
    let (database, store, lease) = claimed(Backend::Sqlite).await;
    let workspaces = WorkspaceStore::new(store.clone(), &WorkspaceStoreConfig::database()).unwrap();
    let (_parent, root) = empty_workspace();
    std::fs::write(root.join("a.txt"), "one").unwrap();
    let first = workspaces.save(&lease, &root, None).await.unwrap();
    // Same size, same time, other content: only a read would tell.
    let mtime = std::fs::metadata(root.join("a.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let file = std::fs::File::options()
        .write(true)
        .open(root.join("a.txt"))
        .unwrap();
    std::io::Write::write_all(&mut &file, b"two").unwrap();
    file.set_modified(mtime).unwrap();
    let second = workspaces.save(&lease, &root, Some(&first)).await.unwrap();
    assert_eq!(second, first);
    // Without the previous manifest it is read.
    let third = workspaces.save(&lease, &root, None).await.unwrap();
    assert_ne!(third, first);
    store.close().await;
    database.finish().await;
}

#[tokio::test]
async fn over_the_size_limit_nothing_is_uploaded() {
    let (database, store, lease) = claimed(Backend::Sqlite).await;
    let config = WorkspaceStoreConfig {
        max_bytes: 256 << 20,
        ..WorkspaceStoreConfig::database()
    };
    let workspaces = WorkspaceStore::new(store.clone(), &config).unwrap();
    let (_parent, root) = empty_workspace();
    std::fs::write(root.join("small.txt"), "x").unwrap();
    // Sparse: its apparent size counts, and it is refused unread.
    let sparse = std::fs::File::create(root.join("sparse.bin")).unwrap();
    sparse.set_len(300 << 20).unwrap();
    let err = workspaces.save(&lease, &root, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the task workspace holds 300 MiB, over the workspace store's limit of 256 MiB \
         (scaffolder.workspaceStore.maxBytes): raise it, or store workspaces in S3 \
         (scaffolder.workspaceStore.type: s3)"
    );
    assert_eq!(workspaces.uploads(), 0);
    let s3 = WorkspaceStoreError::TooLarge {
        bytes: (1 << 30) + (1 << 29),
        limit: 1 << 30,
        s3: true,
    };
    assert_eq!(
        s3.to_string(),
        "the task workspace holds 1.5 GiB, over the workspace store's limit of 1 GiB \
         (scaffolder.workspaceStore.maxBytes): raise it"
    );

    let few = WorkspaceStoreConfig {
        max_entries: 1,
        ..WorkspaceStoreConfig::database()
    };
    let err = WorkspaceStore::new(store.clone(), &few)
        .unwrap()
        .save(&lease, &root, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkspaceStoreError::TooManyEntries { limit: 1 }),
        "{err}"
    );
    store.close().await;
    database.finish().await;
}

#[tokio::test]
async fn a_run_that_lost_its_task_saves_nothing() {
    let (database, store, lease) = claimed(Backend::Sqlite).await;
    let workspaces = WorkspaceStore::new(store.clone(), &WorkspaceStoreConfig::database()).unwrap();
    let (_parent, root) = empty_workspace();
    std::fs::write(root.join("a.txt"), "one").unwrap();
    let stale = Lease {
        attempt: lease.attempt - 1,
        ..lease.clone()
    };
    let err = workspaces.save(&stale, &root, None).await.unwrap_err();
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(workspaces.uploads(), 0);
    assert_eq!(store.workspace_manifest("t").await.unwrap(), None);
    store.close().await;
    database.finish().await;
}

#[tokio::test]
async fn a_planted_manifest_writes_nothing() {
    let (database, store, lease) = claimed(Backend::Sqlite).await;
    let workspaces = WorkspaceStore::new(store.clone(), &WorkspaceStoreConfig::database()).unwrap();
    let (parent, root) = empty_workspace();
    std::fs::write(root.join("a.txt"), "one").unwrap();
    let saved = workspaces.save(&lease, &root, None).await.unwrap();
    let EntryKind::File { digest, .. } = &saved.entries[0].kind else {
        unreachable!()
    };
    let planted = json!({ "version": 1, "entries": [
        { "path": "../escaped.txt", "mode": 420, "kind": "file", "size": 3, "mtime_ns": 0, "digest": digest }
    ]});
    store
        .write_workspace_manifest(&lease, &planted.to_string(), 3)
        .await
        .unwrap();
    let err = workspaces.restore("t", &root).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the saved workspace of task 't' is not usable: invalid path"),
        "{err}"
    );
    assert!(!parent.path().join("escaped.txt").exists());
    assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "one");
    store.close().await;
    database.finish().await;
}
