// Types of the SDK's `fs`: a subset of Node's `fs/promises` over wasi:filesystem.
// Paths: relative ones resolve against the workspace; `/workspace/...` and (when granted)
// `/template/...` are reachable; anything else is refused by the host (EACCES).

/** A Node-like error: `code` is `ENOENT`, `EEXIST`, `EACCES`, `ENOTDIR`, `ENOTEMPTY`, ... */
export interface FsError extends Error {
  code: string;
  syscall: string;
  path: string;
  dest?: string;
}

export interface Stats {
  size: number;
  /** Permission bits (`0o644`), from the host's `files` interface. */
  mode: number | undefined;
  mtime: Date | undefined;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export interface Dirent {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

type Encoding = "utf8" | "utf-8";
type Data = string | Uint8Array | ArrayBufferView | ArrayBuffer;

export interface Fs {
  readFile(path: string, encoding: Encoding | { encoding: Encoding }): Promise<string>;
  readFile(path: string): Promise<Uint8Array>;
  /** `flag: 'a'` appends, `flag: 'wx'` refuses an existing file. */
  writeFile(path: string, data: Data, options?: { flag?: "w" | "a" | "wx" }): Promise<void>;
  appendFile(path: string, data: Data): Promise<void>;
  /** Returns the first directory created when `recursive`. */
  mkdir(path: string, options?: { recursive?: boolean }): Promise<string | undefined>;
  /** Sorted names. */
  readdir(path: string): Promise<string[]>;
  readdir(path: string, options: { withFileTypes: true }): Promise<Dirent[]>;
  stat(path: string): Promise<Stats>;
  chmod(path: string, mode: number): Promise<void>;
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Not in Node's fs/promises: whether the path exists. */
  exists(path: string): Promise<boolean>;
}

export declare const fs: Fs;
export declare const readFile: Fs["readFile"];
export declare const writeFile: Fs["writeFile"];
export declare const appendFile: Fs["appendFile"];
export declare const mkdir: Fs["mkdir"];
export declare const readdir: Fs["readdir"];
export declare const stat: Fs["stat"];
export declare const chmod: Fs["chmod"];
export declare const rm: Fs["rm"];
export declare const rename: Fs["rename"];
export declare const exists: Fs["exists"];
/** The absolute guest path of `path`. */
export declare function resolve(path: string): string;
