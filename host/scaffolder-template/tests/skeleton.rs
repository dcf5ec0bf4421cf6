//! `fetch:template` rendering over in-memory trees.

use scaffolder_template::{
    EntryKind, SkeletonEntry, SkeletonError, SkeletonOptions, render_skeleton,
};
use serde_json::json;

fn file(path: &str, contents: &str) -> SkeletonEntry {
    SkeletonEntry {
        path: path.into(),
        kind: EntryKind::File {
            contents: contents.as_bytes().to_vec(),
            mode: 0o644,
        },
    }
}

fn options() -> SkeletonOptions {
    SkeletonOptions {
        values: json!({ "name": "svc", "withDocs": false, "port": 8080, "list": [1, 2] }),
        ..SkeletonOptions::default()
    }
}

fn render(entries: &[SkeletonEntry], options: &SkeletonOptions) -> Vec<(String, String)> {
    render_skeleton(entries, options)
        .unwrap()
        .into_iter()
        .map(|e| match e.kind {
            EntryKind::File { contents, .. } => (e.path, String::from_utf8(contents).unwrap()),
            EntryKind::Directory => (e.path, "<dir>".into()),
            EntryKind::Symlink { target } => (e.path, format!("-> {target}")),
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn paths_and_contents_are_rendered() {
    let out = render(
        &[file(
            "${{ values.name }}/README.md",
            "# ${{ values.name }} on ${{ values.port }}",
        )],
        &options(),
    );
    assert_eq!(out, pairs(&[("svc/README.md", "# svc on 8080")]));
}

#[test]
fn empty_and_double_slash_paths_are_skipped() {
    let out = render(
        &[
            file("${{ 'docs' if values.withDocs }}/index.md", "docs"),
            file("{% if values.withDocs %}mkdocs.yml{% endif %}", "site"),
            file("keep.txt", "kept"),
        ],
        &options(),
    );
    assert_eq!(out, pairs(&[("keep.txt", "kept")]));
}

#[test]
fn copy_without_templating_keeps_contents_raw_but_renders_paths() {
    let mut opts = options();
    opts.copy_without_templating = vec!["raw/**".into(), "*.tpl".into()];
    let out = render(
        &[
            file("raw/${{ values.name }}.txt", "${{ values.name }}"),
            file("x.tpl", "${{ values.name }}"),
            file("sub/x.tpl", "${{ values.name }}"),
        ],
        &opts,
    );
    assert_eq!(
        out,
        pairs(&[
            ("raw/svc.txt", "${{ values.name }}"),
            ("x.tpl", "${{ values.name }}"),
            ("sub/x.tpl", "svc"),
        ])
    );
}

#[test]
fn copy_without_templating_matches_whole_directories() {
    let mut opts = options();
    opts.copy_without_templating = vec!["vendor".into()];
    let out = render(&[file("vendor/a/b.js", "${{ x }}")], &opts);
    assert_eq!(out, pairs(&[("vendor/a/b.js", "${{ x }}")]));
}

#[test]
fn template_file_extension_renders_only_marked_files() {
    let mut opts = options();
    opts.template_file_extension = SkeletonOptions::extension_from_input(Some(&json!(true)));
    let out = render(
        &[
            file("app.py.njk", "name = '${{ values.name }}'"),
            file("static.js", "${{ untouched }}"),
        ],
        &opts,
    );
    assert_eq!(
        out,
        pairs(&[
            ("app.py", "name = 'svc'"),
            ("static.js", "${{ untouched }}")
        ])
    );
    assert_eq!(
        SkeletonOptions::extension_from_input(Some(&json!("tmpl"))),
        Some(".tmpl".into())
    );
    assert_eq!(
        SkeletonOptions::extension_from_input(Some(&json!(false))),
        None
    );
}

#[test]
fn template_file_extension_is_incompatible_with_raw_copies_and_cookiecutter() {
    let mut opts = options();
    opts.template_file_extension = Some(".njk".into());
    opts.cookiecutter_compat = true;
    assert_eq!(
        render_skeleton(&[], &opts),
        Err(SkeletonError::IncompatibleExtension)
    );
    assert_eq!(
        SkeletonError::IncompatibleExtension.to_string(),
        "Fetch action input extension incompatible with copyWithoutTemplating and cookiecutterCompat"
    );
}

#[test]
fn cookiecutter_compat_uses_double_braces_and_jsonify() {
    let mut opts = options();
    opts.cookiecutter_compat = true;
    let out = render(
        &[file(
            "{{ cookiecutter.name }}.json",
            "{{ cookiecutter.list | jsonify }} {{ cookiecutter.missing }}!",
        )],
        &opts,
    );
    assert_eq!(out, pairs(&[("svc.json", "[1,2] !")]));
}

#[test]
fn binary_files_and_symlinks_are_copied_untouched() {
    let binary = vec![0x89, b'P', b'N', b'G', 0, 1, 2, b'$', b'{', b'{'];
    let entries = vec![
        SkeletonEntry {
            path: "logo.png".into(),
            kind: EntryKind::File {
                contents: binary.clone(),
                mode: 0o644,
            },
        },
        SkeletonEntry {
            path: "link".into(),
            kind: EntryKind::Symlink {
                target: "${{ values.name }}".into(),
            },
        },
        SkeletonEntry {
            path: "${{ values.name }}".into(),
            kind: EntryKind::Directory,
        },
    ];
    let out = render_skeleton(&entries, &options()).unwrap();
    assert_eq!(
        out[0].kind,
        EntryKind::File {
            contents: binary,
            mode: 0o644
        }
    );
    assert_eq!(
        out[1].kind,
        EntryKind::Symlink {
            target: "${{ values.name }}".into()
        }
    );
    assert_eq!(
        out[2],
        SkeletonEntry {
            path: "svc".into(),
            kind: EntryKind::Directory
        }
    );
}

#[test]
fn file_modes_are_kept() {
    let entries = vec![SkeletonEntry {
        path: "run.sh".into(),
        kind: EntryKind::File {
            contents: b"echo ${{ values.name }}".to_vec(),
            mode: 0o755,
        },
    }];
    let out = render_skeleton(&entries, &options()).unwrap();
    assert_eq!(
        out[0].kind,
        EntryKind::File {
            contents: b"echo svc".to_vec(),
            mode: 0o755
        }
    );
}

#[test]
fn trim_and_lstrip_blocks() {
    let mut opts = options();
    opts.trim_blocks = true;
    opts.lstrip_blocks = true;
    let out = render(
        &[file("f", "a\n  {% if true %}\nb\n  {% endif %}\nc")],
        &opts,
    );
    assert_eq!(out, pairs(&[("f", "a\nb\nc")]));
}

#[test]
fn a_render_error_in_a_file_fails_with_its_path() {
    let err = render_skeleton(
        &[file("bad.txt", "${{ values.name | nosuchfilter }}")],
        &options(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, SkeletonError::Contents { path, .. } if path == "bad.txt"),
        "{err}"
    );
}

#[test]
fn filters_work_in_files() {
    let mut opts = options();
    opts.values = json!({ "repoUrl": "github.com?owner=o&repo=r" });
    let out = render(&[file("f", "${{ values.repoUrl | projectSlug }}")], &opts);
    assert_eq!(out, pairs(&[("f", "o/r")]));
}
