#!/usr/bin/env node
// scaffolder-plugin-build [DIR]: builds the plugin package in DIR (default: the current
// directory) into a WebAssembly component, dist/<name>.wasm.
//
// 1. esbuild bundles the entry (package.json `main`, else src/index.ts, src/index.js;
//    TypeScript types are stripped, not checked) into one ES module;
// 2. the WIT the component targets is assembled in a temporary directory: this package's
//    copy of `scaffolder:action@0.1.1` (wit/action.wit), a world adding the WASI
//    filesystem imports the SDK uses, and the WASI 0.2 WIT packages shipped in jco's npm
//    package (a dependency of componentize-js), lib/wit/builtin/<version>/;
// 3. componentize-js (StarlingMonkey) evaluates the module once and snapshots it.
//
// Progress and errors go to stderr; the last line of stdout is `component: <absolute path>`.

import { build } from "esbuild";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const sdkRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const log = (...a) => console.error(...a);

class BuildError extends Error {}

function usage() {
  log(`Usage: scaffolder-plugin-build [DIR]

Builds the plugin package in DIR (default: the current directory) into dist/<name>.wasm.
The entry is package.json "main", else src/index.ts or src/index.js; it must export
\`plugin\` (export const plugin = definePlugin(...)) or a default definePlugin(...) value.
The last line of stdout is "component: <absolute path>".`);
}

function readPackage(dir) {
  const file = join(dir, "package.json");
  if (!existsSync(file)) throw new BuildError(`${dir} has no package.json; give a plugin package's directory`);
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new BuildError(`${file} is not valid JSON: ${e.message}`);
  }
}

function findEntry(dir, pkg) {
  if (pkg.main) {
    const main = resolve(dir, pkg.main);
    if (!existsSync(main)) throw new BuildError(`package.json "main" is ${pkg.main}, but ${main} does not exist`);
    return main;
  }
  for (const candidate of ["src/index.ts", "src/index.js", "src/index.mts", "src/index.mjs"]) {
    const p = join(dir, candidate);
    if (existsSync(p)) return p;
  }
  throw new BuildError(`no entry in ${dir}: set "main" in package.json or create src/index.ts`);
}

// The newest WASI 0.2.x WIT folder that jco ships (jco is installed with componentize-js).
function wasiWitDir() {
  const tried = [];
  for (let d = sdkRoot; ; d = dirname(d)) {
    for (const base of [join(d, "node_modules/@bytecodealliance/jco"),
                        join(d, "node_modules/@bytecodealliance/componentize-js/node_modules/@bytecodealliance/jco")]) {
      const builtin = join(base, "lib/wit/builtin");
      tried.push(builtin);
      if (!existsSync(builtin)) continue;
      const versions = readdirSync(builtin)
        .filter((v) => /^0\.2\.\d+$/.test(v) && existsSync(join(builtin, v, "wasi-filesystem")))
        .sort((a, b) => Number(a.split(".")[2]) - Number(b.split(".")[2]));
      if (versions.length) {
        const version = versions[versions.length - 1];
        return { dir: join(builtin, version), version };
      }
    }
    if (dirname(d) === d) break;
  }
  throw new BuildError(
    `cannot find the WASI 0.2 WIT files (looked in ${tried.slice(0, 2).join(", ")}, ...); ` +
      `run npm install in the plugin package (they come with @bytecodealliance/jco, a dependency of componentize-js)`,
  );
}

function assembleWit(tmp) {
  const wit = join(tmp, "wit");
  const deps = join(wit, "deps");
  mkdirSync(deps, { recursive: true });
  const { dir, version } = wasiWitDir();
  for (const pkg of readdirSync(dir)) cpSync(join(dir, pkg), join(deps, pkg), { recursive: true });
  mkdirSync(join(deps, "scaffolder-action"));
  cpSync(join(sdkRoot, "wit/action.wit"), join(deps, "scaffolder-action/action.wit"));
  // The SDK's code imports wasi:filesystem; a JS module can only import interfaces its world names.
  writeFileSync(
    join(wit, "world.wit"),
    `package scaffolder:plugin-sdk-js@0.1.0;

world js-action {
    include scaffolder:action/action@0.1.1;
    import wasi:filesystem/preopens@${version};
    import wasi:filesystem/types@${version};
}
`,
  );
  return { wit, version };
}

async function bundle(dir, entry, out) {
  // A wrapper entry takes the plugin's `plugin` export (or its default export) and exports it
  // as the component's `plugin`, so a missing export is a build error, not a snapshot crash.
  const wrapper = join(dirname(out), "entry.js");
  writeFileSync(
    wrapper,
    `import * as m from ${JSON.stringify(entry)};
const p = m.plugin !== undefined ? m.plugin : m.default;
export const plugin = p;
`,
  );
  // One ES module for the engine; the `scaffolder:` and `wasi:` imports are the
  // component's, resolved by componentize.
  const bundling = {
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    conditions: ["import", "module", "default"],
    external: ["scaffolder:*", "wasi:*"],
    logLevel: "silent",
    absWorkingDir: dir,
  };
  // First check the entry's exports.
  const probe = await build({
    ...bundling,
    entryPoints: [entry],
    write: false,
    metafile: true,
  }).catch((e) => {
    throw new BuildError(esbuildMessage(e, dir));
  });
  const exports = Object.values(probe.metafile.outputs)[0].exports || [];
  if (!exports.includes("plugin") && !exports.includes("default"))
    throw new BuildError(
      `${relative(dir, entry)} exports neither \`plugin\` nor a default; add: export const plugin = definePlugin(myAction, ...)`,
    );
  await build({
    ...bundling,
    entryPoints: [wrapper],
    outfile: out,
  }).catch((e) => {
    throw new BuildError(esbuildMessage(e, dir));
  });
}

function esbuildMessage(e, dir) {
  const errors = e && e.errors;
  if (!Array.isArray(errors) || errors.length === 0) return `bundling failed: ${e && e.message}`;
  const lines = errors.map((m) => {
    const l = m.location;
    const where = l ? `${l.file}:${l.line}:${l.column + 1}: ` : "";
    const hint =
      /node:|Could not resolve "(fs|path|os|child_process|crypto|http|https|url|util|stream|buffer)"/.test(m.text)
        ? " (Node's built-in modules do not exist in a plugin; use the SDK's fs and the global fetch)"
        : "";
    return `${where}${m.text}${hint}${l && l.lineText ? `\n    ${l.lineText.trim()}` : ""}`;
  });
  return `bundling failed in ${dir}:\n${lines.join("\n")}`;
}

// `\p{...}` in a regular expression literal: StarlingMonkey has no ICU, and such a literal
// makes the whole module fail to evaluate at snapshot time.
function unicodePropertyHint(source) {
  const m = /\/(?:[^/\n\\]|\\.)*\\[pP]\{[^}]*\}(?:[^/\n\\]|\\.)*\/[a-z]*/.exec(source);
  if (!m) return "";
  const line = source.slice(0, m.index).split("\n").length;
  return `\nhint: the bundle has a regular expression with a Unicode property escape (\\p{...}) at bundle line ${line}: ${m[0].slice(0, 80)}; the JS engine is built without ICU and rejects it; use an explicit character class, or a library that avoids it`;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes("-h") || args.includes("--help")) {
    usage();
    return;
  }
  if (args.length > 1) {
    usage();
    throw new BuildError("give at most one directory");
  }
  const dir = resolve(args[0] || ".");
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new BuildError(`${dir} is not a directory`);
  const pkg = readPackage(dir);
  const name = basename(String(pkg.name || basename(dir)));
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new BuildError(`package name '${pkg.name}' cannot name a file`);
  const entry = findEntry(dir, pkg);
  const outDir = join(dir, "dist");
  const outFile = join(outDir, `${name}.wasm`);
  mkdirSync(outDir, { recursive: true });

  const tmp = mkdtempSync(join(tmpdir(), "scaffolder-plugin-build-"));
  try {
    const t0 = performance.now();
    const bundled = join(tmp, "bundle.js");
    log(`bundling ${relative(dir, entry)} ...`);
    await bundle(dir, entry, bundled);
    const { wit, version } = assembleWit(tmp);
    const t1 = performance.now();
    log(`building the component with componentize-js (WASI ${version}) ...`);
    let componentize;
    try {
      ({ componentize } = await import("@bytecodealliance/componentize-js"));
    } catch (e) {
      throw new BuildError(
        `cannot load @bytecodealliance/componentize-js (${e.message}); run npm install (the SDK needs @bytecodealliance/preview2-shim 0.17.9 installed next to it)`,
      );
    }
    let component;
    try {
      ({ component } = await componentize({
        sourcePath: bundled,
        witPath: wit,
        worldName: "js-action",
        // `fetch-event` is the HTTP server export; keep `http` for outgoing fetch.
        disableFeatures: ["fetch-event"],
      }));
    } catch (e) {
      const source = readFileSync(bundled, "utf8");
      const message = String(e && e.message ? e.message : e);
      let hint = unicodePropertyHint(source);
      if (!hint && message.includes("evaluating top-level script"))
        hint =
          "\nhint: the module threw while it was evaluated at build time (top-level code, createTemplateAction " +
          "and definePlugin run then); bundle.js lines are in the bundle esbuild made of the entry";
      throw new BuildError(`componentize-js failed: ${message}${hint}`);
    }
    // Written beside and renamed into place, so a reader of dist/ never sees half a file
    // (another build of the same package may be reading the previous one).
    const partial = `${outFile}.${process.pid}.partial`;
    writeFileSync(partial, component);
    renameSync(partial, outFile);
    const t2 = performance.now();
    log(
      `built ${relative(dir, outFile)}: ${(component.length / 1048576).toFixed(1)} MiB ` +
        `(bundle ${((t1 - t0) / 1000).toFixed(1)} s, componentize ${((t2 - t1) / 1000).toFixed(1)} s)`,
    );
    console.log(`component: ${outFile}`);
  } finally {
    if (!process.env.SCAFFOLDER_PLUGIN_BUILD_KEEP) rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  }
}

main().catch((e) => {
  if (e instanceof BuildError) log(`error: ${e.message}`);
  else log(`error: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
