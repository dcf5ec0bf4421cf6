//! A plugin's directory built into its component, as `scaffolder plugin build` does.
//! [`component`] is how every `--plugin` and `plugin test` argument becomes a component:
//! a plugin's directory is built first.
//!
//! - A Rust crate (`Cargo.toml`): cargo builds it for `wasm32-wasip2` (the target installed
//!   with rustup first when missing). Cargo runs in the crate's directory, so its
//!   `.cargo/config.toml` applies: `plugin new` writes one that shares `../target` between
//!   the plugins created side by side.
//! - A TypeScript or JavaScript package (`package.json`): its npm packages are installed
//!   when `node_modules` is missing (`npm ci` with a lockfile), then the TypeScript SDK's
//!   `scaffolder-plugin-build` bundles and componentizes it and names the component on its
//!   last line of output.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

const TARGET: &str = "wasm32-wasip2";

/// The component a plugin argument names: a directory is a plugin's sources (a Rust crate
/// or an npm package), built as `plugin build` builds it (the tools' output on stderr);
/// anything else is the component file itself.
pub fn component(path: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => build(path),
        Ok(_) => Ok(path.to_path_buf()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} does not exist; give a plugin component (.wasm) or a plugin's directory (a Rust crate or an npm package)",
            path.display()
        ),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Builds the plugin in `dir` (a Rust crate or an npm package) and returns its component.
/// The tools' own output goes to stderr.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("package.json").is_file() {
        return build_package(dir);
    }
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{} has neither a Cargo.toml nor a package.json; give a plugin's directory \
             (`scaffolder plugin new NAME [--lang typescript]` creates one)",
            dir.display()
        );
    }
    build_crate(dir)
}

/// Builds the plugin crate in `dir` in release mode.
fn build_crate(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    ensure_target()?;
    let manifest = std::path::absolute(&manifest)
        .with_context(|| format!("cannot resolve {}", manifest.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {cargo}; is Rust installed (https://rustup.rs)?"))?;
    let mut components = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            components.extend(component_of(&line));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!(
            "building {} failed (cargo's errors are above)",
            dir.display()
        );
    }
    match components.len() {
        1 => Ok(components.remove(0)),
        0 => bail!(
            "building {} produced no component: the crate needs `[lib] crate-type = [\"cdylib\"]`",
            dir.display()
        ),
        _ => bail!(
            "building {} produced several components ({}); a plugin crate builds one",
            dir.display(),
            components
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Builds the npm package in `dir` with the TypeScript SDK's build command.
fn build_package(dir: &Path) -> anyhow::Result<PathBuf> {
    if !dir.join("node_modules").is_dir() {
        let install = if dir.join("package-lock.json").is_file() {
            "ci"
        } else {
            "install"
        };
        eprintln!("installing the plugin's npm packages (`npm {install}`)");
        let status = npm(dir)
            .args([install, "--no-audit", "--no-fund"])
            // On stderr too: stdout is for what `plugin build` prints (`--json`).
            .stdout(std::io::stderr())
            .status()
            .map_err(npm_missing)?;
        if !status.success() {
            bail!(
                "`npm {install}` failed in {} (npm's errors are above)",
                dir.display()
            );
        }
    }
    let output = npm(dir)
        .args(["exec", "--no", "--", "scaffolder-plugin-build"])
        .stdout(Stdio::piped())
        .output()
        .map_err(npm_missing)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "building {} failed (the errors are above); a TypeScript plugin needs \
             @scaffolder/plugin-sdk among its dependencies, which provides `scaffolder-plugin-build`",
            dir.display()
        );
    }
    let component = stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("component: "))
        .with_context(|| {
            format!(
                "`scaffolder-plugin-build` in {} named no component (its output ended: {:?})",
                dir.display(),
                stdout.lines().last().unwrap_or_default()
            )
        })?;
    Ok(dir.join(component.trim()))
}

/// `npm` in `dir`, its own output on stderr.
fn npm(dir: &Path) -> Command {
    let mut command = Command::new("npm");
    command.current_dir(dir).stderr(Stdio::inherit());
    command
}

fn npm_missing(err: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot run npm ({err}); a TypeScript plugin is built with Node.js 20 or later and npm \
         (https://nodejs.org)"
    )
}

/// The `.wasm` file of a `cdylib` artifact in one line of cargo's JSON messages.
fn component_of(line: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let kinds = message.pointer("/target/kind")?.as_array()?;
    if !kinds.iter().any(|k| k.as_str() == Some("cdylib")) {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Installs the `wasm32-wasip2` target with rustup when the toolchain lacks it.
fn ensure_target() -> anyhow::Result<()> {
    if target_installed() {
        return Ok(());
    }
    eprintln!("installing the {TARGET} target with `rustup target add {TARGET}`");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(status) if status.success() && target_installed() => Ok(()),
        Ok(_) => bail!(
            "`rustup target add {TARGET}` failed (see above); run it yourself, then build again"
        ),
        Err(err) => bail!(
            "the Rust toolchain has no {TARGET} target and rustup could not be run ({err}); \
             install rustup (https://rustup.rs) or a toolchain with the {TARGET} standard library"
        ),
    }
}

fn target_installed() -> bool {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    sysroot.is_some_and(|sysroot| {
        Path::new(&sysroot)
            .join("lib/rustlib")
            .join(TARGET)
            .exists()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cdylib_component_in_cargo_messages() {
        let artifact = r#"{"reason":"compiler-artifact","target":{"kind":["cdylib"],"name":"hello"},"filenames":["/x/target/wasm32-wasip2/release/hello.wasm"]}"#;
        assert_eq!(
            component_of(artifact),
            Some(PathBuf::from("/x/target/wasm32-wasip2/release/hello.wasm"))
        );
        let dependency = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"serde"},"filenames":["/x/libserde.rlib"]}"#;
        assert_eq!(component_of(dependency), None);
        assert_eq!(
            component_of(r#"{"reason":"build-finished","success":true}"#),
            None
        );
        assert_eq!(component_of("Compiling hello"), None);
    }
}
