//! `scaffolder plugin new NAME [--lang rust|typescript]`: runs the `examples/wasm-plugin`
//! or `examples/typescript-plugin` template (embedded in the binary) through the engine,
//! like any template, and writes the crate or package it renders. The same templates serve
//! the Backstage frontend, so a plugin looks the same whether it was created here or from
//! the portal.
//!
//! Here, and not from the portal, a crate also gets a `.cargo/config.toml` that puts its
//! builds in `../target`, shared by the plugins created in the same directory: a new
//! plugin then compiles only its own crate, not the SDK, serde and wit-bindgen again. A
//! crate created from the portal is a repository of its own, where `..` is nobody's.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use scaffolder_engine::{DryRunUpload, TemplateFiles};
use scaffolder_template::Template;
use serde_json::json;

use crate::cli::{PluginLanguage, PluginNewArgs};
use scaffolder_local::files::{ensure_empty_dir, write_files};
use scaffolder_local::session::LocalSession;

include!(concat!(env!("OUT_DIR"), "/plugin_template.rs"));

pub async fn run(args: PluginNewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let target = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    ensure_empty_dir(&target)?;
    let sdk = sdk_path(args.lang, args.sdk.as_deref())?;

    let (template, files) = embedded_template(args.lang)?;
    let mut values = json!({ "name": args.name, "sdkPath": sdk.display().to_string() });
    if let Some(description) = &args.description {
        values["description"] = json!(description);
    }
    if let Err(problems) = scaffolder_template::validate_values(&template.spec.parameters, &values)
    {
        let messages: Vec<String> = problems.iter().map(|p| p.stack.clone()).collect();
        bail!("cannot create the plugin: {}", messages.join("; "));
    }
    let session = LocalSession::open(&[], &[], args.data_dir.as_deref()).await?;
    let result = session
        .run_quietly(template, values, TemplateFiles::Uploaded(files))
        .await
        .context("rendering the plugin template failed")?;
    write_files(&target, &result.directory_contents)?;
    match args.lang {
        PluginLanguage::Rust => created_crate(&args.name, &target),
        PluginLanguage::Typescript => {
            created_package(&args.name, &target);
            Ok(())
        }
    }
}

/// Writes the crate's shared-target configuration and says what to do next.
fn created_crate(name: &str, target: &Path) -> anyhow::Result<()> {
    let config = target.join(CARGO_CONFIG);
    if let Some(parent) = config.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&config, SHARED_TARGET_CONFIG)
        .with_context(|| format!("cannot write {}", config.display()))?;

    println!(
        "Created the plugin crate {name} in {} (action {name}:greet)\n",
        target.display(),
    );
    let dir = target.display();
    print_next_steps(&[
        (
            format!("cd {dir} && cargo test"),
            "the unit tests, natively",
        ),
        (
            format!("scaffolder plugin build {dir}"),
            "the component, its digest and capabilities",
        ),
        (
            format!("scaffolder plugin test {dir}"),
            "tests/cases/*.yaml in the real sandbox",
        ),
        (
            format!(
                "scaffolder dry-run {dir}/example/template.yaml --plugin {dir} --set who=World"
            ),
            "the example template, the crate built first",
        ),
    ]);
    let shared = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("target"),
        _ => PathBuf::from("./target"),
    };
    println!(
        "\nBuilds go to {} ({}), shared by the plugins created beside this one: the first \
         build compiles the dependencies (a minute or so), each later plugin only its own \
         crate.",
        shared.display(),
        config.display()
    );
    Ok(())
}

/// Says what to do next with a new TypeScript package.
fn created_package(name: &str, target: &Path) {
    println!(
        "Created the TypeScript plugin {name} in {} (action {name}:greet)\n",
        target.display(),
    );
    let dir = target.display();
    print_next_steps(&[
        (
            format!("scaffolder plugin build {dir}"),
            "npm install, then the component, its digest and capabilities",
        ),
        (
            format!("scaffolder plugin test {dir}"),
            "tests/cases/*.yaml in the real sandbox",
        ),
        (
            format!(
                "scaffolder dry-run {dir}/example/template.yaml --plugin {dir} --set who=World"
            ),
            "the example template, the package built first",
        ),
    ]);
    println!(
        "\nBuilding needs Node.js 20 or later and npm; the first build installs the SDK's \
         packages (componentize-js, esbuild) into {dir}/node_modules."
    );
}

fn print_next_steps(steps: &[(String, &str)]) {
    println!("Next:");
    let width = steps
        .iter()
        .map(|(command, _)| command.len())
        .max()
        .unwrap_or(0);
    for (command, what) in steps {
        println!("  {command:width$}  {what}");
    }
}

/// Where the shared target directory is configured, in the crate.
const CARGO_CONFIG: &str = ".cargo/config.toml";

/// Cargo reads a relative `target-dir` from the directory holding `.cargo/`: the crate.
const SHARED_TARGET_CONFIG: &str = "\
# Written by `scaffolder plugin new`: the plugins created in the same directory share one
# target directory, so a new plugin compiles only its own crate, not the SDK, serde and
# wit-bindgen again. Delete this file to build inside the crate instead (for example in CI,
# where `..` is outside the checkout).
[build]
target-dir = \"../target\"
";

/// Names that make a valid crate, directory and action-id prefix.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "'{name}' cannot name a plugin: use lowercase letters, digits and single dashes, starting \
             with a letter (for example acme-tickets)"
        );
    }
    Ok(())
}

/// What `plugin new` knows of each language: its template and its SDK.
struct Language {
    /// The template, `examples/<example>/`, embedded as `files`.
    example: &'static str,
    files: &'static [(&'static str, &'static [u8])],
    /// The SDK's directory in the repository, its manifest, the line that names it there
    /// and what it is called in messages.
    sdk_dir: &'static str,
    sdk_manifest: &'static str,
    sdk_name: &'static str,
    sdk_what: &'static str,
}

fn language(lang: PluginLanguage) -> Language {
    match lang {
        PluginLanguage::Rust => Language {
            example: "wasm-plugin",
            files: RUST_PLUGIN_TEMPLATE,
            sdk_dir: "plugins/sdk",
            sdk_manifest: "Cargo.toml",
            sdk_name: "name = \"scaffolder-plugin-sdk\"",
            sdk_what: "the scaffolder-plugin-sdk crate",
        },
        PluginLanguage::Typescript => Language {
            example: "typescript-plugin",
            files: TYPESCRIPT_PLUGIN_TEMPLATE,
            sdk_dir: "plugins/sdk-ts",
            sdk_manifest: "package.json",
            sdk_name: "\"name\": \"@scaffolder/plugin-sdk\"",
            sdk_what: "the @scaffolder/plugin-sdk package",
        },
    }
}

/// `--sdk`, else the SDK of the source tree this binary was built from.
fn sdk_path(lang: PluginLanguage, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let Language {
        sdk_dir: dir,
        sdk_manifest: manifest,
        sdk_name: name,
        sdk_what: what,
        ..
    } = language(lang);
    let built_with = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    let candidate = flag.map(Path::to_path_buf).unwrap_or(built_with);
    let text = std::fs::read_to_string(candidate.join(manifest)).ok();
    if !text.is_some_and(|t| t.contains(name)) {
        bail!(
            "{} is not {what}; give its directory ({dir} in the scaffolder repository) with \
             --sdk DIR or SCAFFOLDER_PLUGIN_SDK",
            candidate.display()
        );
    }
    std::path::absolute(&candidate)
        .map(|p| normalize(&p))
        .with_context(|| format!("cannot resolve {}", candidate.display()))
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The embedded template of `lang` and its files, as a dry run's uploads.
fn embedded_template(lang: PluginLanguage) -> anyhow::Result<(Template, Vec<DryRunUpload>)> {
    let Language { example, files, .. } = language(lang);
    let (_, source) = files
        .iter()
        .find(|(path, _)| *path == "template.yaml")
        .context("the embedded plugin template has no template.yaml")?;
    let template = Template::from_yaml(
        std::str::from_utf8(source).context("template.yaml is not UTF-8")?,
        Some(&format!("examples/{example}/template.yaml")),
    )?;
    let files = files
        .iter()
        .map(|(path, content)| DryRunUpload {
            path: (*path).to_owned(),
            content: content.to_vec(),
        })
        .collect();
    Ok((template, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_must_fit_crates_and_action_ids() {
        for good in ["hello", "acme-tickets", "v2"] {
            check_name(good).unwrap();
        }
        for bad in ["Hello", "2fa", "a--b", "tickets-", "a_b", "", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_embedded_templates_are_the_examples() {
        let (template, files) = embedded_template(PluginLanguage::Rust).unwrap();
        assert_eq!(template.metadata.name, "wasm-plugin");
        assert!(files.iter().any(|f| f.path == "skeleton/src/lib.rs"));
        let (template, files) = embedded_template(PluginLanguage::Typescript).unwrap();
        assert_eq!(template.metadata.name, "typescript-plugin");
        assert!(files.iter().any(|f| f.path == "skeleton/src/index.ts"));
    }

    #[test]
    fn the_sdk_must_be_the_sdk_of_the_language() {
        let rust = sdk_path(PluginLanguage::Rust, None).unwrap();
        let typescript = sdk_path(PluginLanguage::Typescript, None).unwrap();
        assert!(
            typescript.ends_with("plugins/sdk-ts"),
            "{}",
            typescript.display()
        );
        let err = sdk_path(PluginLanguage::Typescript, Some(&rust)).unwrap_err();
        assert!(err.to_string().contains("@scaffolder/plugin-sdk"), "{err}");
        let err = sdk_path(PluginLanguage::Rust, Some(Path::new("/"))).unwrap_err();
        assert!(err.to_string().contains("--sdk DIR"), "{err}");
    }
}
