// A subset of Node's `fs/promises` over `wasi:filesystem` 0.2: the step's workspace
// (`/workspace`, read-write) and, when granted, the template directory (`/template`,
// read-only). Relative paths resolve against the workspace. Any other absolute path goes
// to the host's catch-all `/` directory, which refuses it; the refusal surfaces as EACCES
// and the host reports the step as denied.
//
// Errors carry Node's `code` (`ENOENT`, `EEXIST`, `EACCES`, ...), `syscall` and `path`,
// and Node-like messages (`ENOENT: no such file or directory, open 'x.txt'`).

import { getDirectories } from "wasi:filesystem/preopens@0.2.12";
import * as files from "scaffolder:action/files@0.1.1";

let workspace = "/workspace";

/** @internal Set by `definePlugin` from the step's context before the handler runs. */
export function setWorkspace(path) {
  if (typeof path === "string" && path.startsWith("/")) workspace = path;
}

// wasi:filesystem error codes → Node's codes and descriptions.
const CODES = {
  access: ["EACCES", "permission denied"],
  "not-permitted": ["EPERM", "operation not permitted"],
  "no-entry": ["ENOENT", "no such file or directory"],
  exist: ["EEXIST", "file already exists"],
  "is-directory": ["EISDIR", "illegal operation on a directory"],
  "not-directory": ["ENOTDIR", "not a directory"],
  "not-empty": ["ENOTEMPTY", "directory not empty"],
  "read-only": ["EROFS", "read-only file system"],
  invalid: ["EINVAL", "invalid argument"],
  loop: ["ELOOP", "too many symbolic links encountered"],
  "name-too-long": ["ENAMETOOLONG", "name too long"],
  "cross-device": ["EXDEV", "cross-device link not permitted"],
  "insufficient-space": ["ENOSPC", "no space left on device"],
  quota: ["EDQUOT", "disk quota exceeded"],
  "file-too-large": ["EFBIG", "file too large"],
  busy: ["EBUSY", "resource busy or locked"],
  io: ["EIO", "i/o error"],
  unsupported: ["ENOTSUP", "operation not supported"],
  "bad-descriptor": ["EBADF", "bad file descriptor"],
  "too-many-links": ["EMLINK", "too many links"],
  "insufficient-memory": ["ENOMEM", "not enough memory"],
};

function fsError(code, description, syscall, path, dest) {
  const where = dest === undefined ? `'${path}'` : `'${path}' -> '${dest}'`;
  const err = new Error(`${code}: ${description}, ${syscall} ${where}`);
  err.code = code;
  err.syscall = syscall;
  err.path = path;
  if (dest !== undefined) err.dest = dest;
  return err;
}

// A wasi:filesystem error code (thrown by the bindings as an object with `payload`) as a
// Node-like error; anything else unchanged.
function nodeError(e, syscall, path, dest) {
  const wasiCode = e && typeof e === "object" && "payload" in e ? e.payload : undefined;
  if (typeof wasiCode !== "string") return e;
  const [code, description] = CODES[wasiCode] || ["EIO", wasiCode];
  return fsError(code, description, syscall, path, dest);
}

// Runs `fn`, turning a wasi:filesystem error into a Node-like one.
function call(syscall, path, fn, dest) {
  try {
    return fn();
  } catch (e) {
    throw nodeError(e, syscall, path, dest);
  }
}

// Lexical normalisation of an absolute path: `.`, `..` and repeated slashes removed.
function normalize(abs) {
  const out = [];
  for (const part of abs.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** The absolute guest path of `path` (relative paths are inside the workspace). */
export function resolve(path) {
  if (path instanceof URL) path = path.pathname;
  if (typeof path !== "string" || path === "")
    throw new TypeError(`a path must be a non-empty string, got ${JSON.stringify(path)}`);
  return normalize(path.startsWith("/") ? path : workspace + "/" + path);
}

let preopens;
const dispose = (r) => {
  if (r && typeof r[Symbol.dispose] === "function") r[Symbol.dispose]();
};

// The preopened directory holding `abs` (longest prefix) and the path relative to it.
function locate(abs) {
  if (!preopens) preopens = getDirectories().map(([d, p]) => [d, normalize(p)]);
  let best;
  for (const [d, p] of preopens) {
    const inside = p === "/" || abs === p || abs.startsWith(p + "/");
    if (inside && (!best || p.length > best[1].length)) best = [d, p];
  }
  if (!best) throw fsError("EACCES", "permission denied", "open", abs);
  const rel = best[1] === "/" ? abs.slice(1) : abs.slice(best[1].length + 1);
  return { dir: best[0], rel: rel === "" ? "." : rel };
}

const FOLLOW = { symlinkFollow: true };

function openFile(path, syscall, openFlags, descriptorFlags) {
  const abs = resolve(path);
  const { dir, rel } = locate(abs);
  return call(syscall, path, () => dir.openAt(FOLLOW, rel, openFlags, descriptorFlags));
}

const encoder = new TextEncoder();

function encodingOf(options) {
  const enc = typeof options === "string" ? options : options && options.encoding;
  if (enc == null) return undefined;
  const e = String(enc).toLowerCase();
  if (e !== "utf8" && e !== "utf-8")
    throw new TypeError(`encoding '${enc}' is not supported; use 'utf8' or none (bytes)`);
  return "utf8";
}

/** Reads a whole file: text with `'utf8'`, else a Uint8Array. */
async function readFile(path, options) {
  const encoding = encodingOf(options);
  const d = openFile(path, "open", {}, { read: true });
  try {
    const chunks = [];
    let total = 0;
    for (;;) {
      const [buf, eof] = call("read", path, () => d.read(65536n, BigInt(total)));
      if (buf.length > 0) {
        chunks.push(buf);
        total += buf.length;
      }
      if (eof || buf.length === 0) break;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return encoding ? new TextDecoder().decode(all) : all;
  } finally {
    dispose(d);
  }
}

function bytesOf(data) {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError("data must be a string, a Uint8Array or an ArrayBuffer");
}

/** Creates or replaces a file with `data` (a string is written as UTF-8). */
async function writeFile(path, data, options) {
  const flag = options && typeof options === "object" ? options.flag : undefined;
  const append = flag === "a";
  const bytes = bytesOf(data);
  const d = openFile(
    path,
    "open",
    { create: true, truncate: !append, exclusive: flag === "wx" },
    { write: true },
  );
  try {
    let at = append ? Number(call("stat", path, () => d.stat()).size) : 0;
    let written = 0;
    while (written < bytes.length) {
      const n = call("write", path, () => d.write(bytes.subarray(written), BigInt(at)));
      written += Number(n);
      at += Number(n);
    }
  } finally {
    dispose(d);
  }
}

/** Appends `data` to a file, creating it when missing. */
async function appendFile(path, data) {
  return writeFile(path, data, { flag: "a" });
}

function statAt(path, syscall = "stat") {
  const abs = resolve(path);
  const { dir, rel } = locate(abs);
  return call(syscall, path, () => dir.statAt(FOLLOW, rel));
}

/** Creates a directory; `{ recursive: true }` creates its parents and accepts an existing one. */
async function mkdir(path, options) {
  const recursive = !!(options && options.recursive);
  const abs = resolve(path);
  if (!recursive) {
    const { dir, rel } = locate(abs);
    call("mkdir", path, () => dir.createDirectoryAt(rel));
    return undefined;
  }
  const parts = abs.split("/").filter(Boolean);
  let first;
  for (let i = 1; i <= parts.length; i++) {
    const sub = "/" + parts.slice(0, i).join("/");
    const { dir, rel } = locate(sub);
    if (rel === ".") continue; // a preopen itself
    let type;
    try {
      type = dir.statAt(FOLLOW, rel).type;
    } catch (e) {
      if (!(e && e.payload === "no-entry")) throw nodeError(e, "mkdir", path);
    }
    if (type === undefined) {
      call("mkdir", path, () => dir.createDirectoryAt(rel));
      if (first === undefined) first = sub;
    } else if (type !== "directory") {
      throw fsError("ENOTDIR", "not a directory", "mkdir", path);
    }
  }
  return first;
}

function entriesOf(path) {
  const d = openFile(path, "scandir", { directory: true }, { read: true });
  try {
    const stream = call("scandir", path, () => d.readDirectory());
    const out = [];
    try {
      for (;;) {
        const entry = call("scandir", path, () => stream.readDirectoryEntry());
        if (!entry) break;
        out.push(entry);
      }
    } finally {
      dispose(stream);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } finally {
    dispose(d);
  }
}

const isDir = (type) => type === "directory";
const isFile = (type) => type === "regular-file";

/** The names in a directory, sorted; `{ withFileTypes: true }` gives `{ name, isFile(), isDirectory() }`. */
async function readdir(path, options) {
  const entries = entriesOf(path);
  if (options && options.withFileTypes)
    return entries.map((e) => ({
      name: e.name,
      isFile: () => isFile(e.type),
      isDirectory: () => isDir(e.type),
      isSymbolicLink: () => e.type === "symbolic-link",
    }));
  return entries.map((e) => e.name);
}

const dateOf = (t) => (t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanoseconds / 1e6)) : undefined);

/** `{ isFile(), isDirectory(), size, mode, mtime }` of a path (symlinks followed). */
async function stat(path) {
  const s = statAt(path);
  let mode;
  try {
    mode = files.mode(resolve(path));
  } catch {
    mode = undefined;
  }
  return {
    size: Number(s.size),
    mode,
    mtime: dateOf(s.dataModificationTimestamp),
    isFile: () => isFile(s.type),
    isDirectory: () => isDir(s.type),
    isSymbolicLink: () => s.type === "symbolic-link",
  };
}

/** Sets the permission bits of a workspace file (`0o755`), through the host's `files` interface. */
async function chmod(path, mode) {
  try {
    files.setMode(resolve(path), mode);
  } catch (e) {
    const m = e && typeof e === "object" && "payload" in e ? String(e.payload) : String(e);
    const err = new Error(`chmod '${path}': ${m}`);
    err.path = path;
    err.syscall = "chmod";
    throw err;
  }
}

function removeTree(dir, rel, path) {
  const type = call("rm", path, () => dir.statAt({ symlinkFollow: false }, rel)).type;
  if (!isDir(type)) {
    call("rm", path, () => dir.unlinkFileAt(rel));
    return;
  }
  const d = call("rm", path, () => dir.openAt({ symlinkFollow: false }, rel, { directory: true }, { read: true }));
  let names;
  try {
    const stream = call("rm", path, () => d.readDirectory());
    names = [];
    try {
      for (let e; (e = call("rm", path, () => stream.readDirectoryEntry())); ) names.push(e.name);
    } finally {
      dispose(stream);
    }
  } finally {
    dispose(d);
  }
  for (const name of names) removeTree(dir, rel + "/" + name, path);
  call("rm", path, () => dir.removeDirectoryAt(rel));
}

/** Removes a file, or a directory with `{ recursive: true }`; `{ force: true }` ignores a missing path. */
async function rm(path, options) {
  const recursive = !!(options && options.recursive);
  const force = !!(options && options.force);
  const abs = resolve(path);
  const { dir, rel } = locate(abs);
  if (rel === ".") throw fsError("EPERM", "operation not permitted", "rm", path);
  let type;
  try {
    type = call("rm", path, () => dir.statAt({ symlinkFollow: false }, rel)).type;
  } catch (e) {
    if (force && e.code === "ENOENT") return;
    throw e;
  }
  if (isDir(type)) {
    if (!recursive) {
      const err = fsError("ERR_FS_EISDIR", "is a directory (use { recursive: true })", "rm", path);
      throw err;
    }
    removeTree(dir, rel, path);
  } else {
    call("rm", path, () => dir.unlinkFileAt(rel));
  }
}

/** Renames (moves) a file or directory. */
async function rename(from, to) {
  const a = locate(resolve(from));
  const b = locate(resolve(to));
  call("rename", from, () => a.dir.renameAt(a.rel, b.dir, b.rel), to);
}

/** Whether a path exists (not in Node's fs/promises; a convenience). */
async function exists(path) {
  try {
    statAt(path);
    return true;
  } catch (e) {
    if (e.code === "ENOENT") return false;
    throw e;
  }
}

export const fs = { readFile, writeFile, appendFile, mkdir, readdir, stat, chmod, rm, rename, exists };
export { readFile, writeFile, appendFile, mkdir, readdir, stat, chmod, rm, rename, exists };
