// Types of @scaffolder/plugin-sdk (hand-written; the runtime is src/index.js).
import type { z as zod, ZodTypeAny, infer as ZodInfer } from "zod";
import type { Fs } from "./fs.js";

export { z } from "zod";
export declare const fs: Fs;

/** StarlingMonkey's fetch over wasi:http; refusals name the URL (also the global `fetch`). */
export declare function fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;

/** A JSON Schema (draft-07) object. */
export type JsonSchema = { [key: string]: unknown };

/**
 * An input or output schema as Backstage accepts it: a JSON Schema, a zod schema, a
 * function `(z) => zodSchema`, or a record of fields, each a zod schema or `(z) => zodSchema`.
 */
export type SchemaSpec =
  | JsonSchema
  | ZodTypeAny
  | ((z: typeof zod) => ZodTypeAny)
  | { [field: string]: ZodTypeAny | ((z: typeof zod) => ZodTypeAny) };

type FieldType<F> = F extends (z: typeof zod) => infer T
  ? T extends ZodTypeAny ? ZodInfer<T> : never
  : F extends ZodTypeAny ? ZodInfer<F> : never;

/** The handler's `ctx.input` type for a schema spec (`Record<string, any>` for JSON Schema). */
export type InputOf<S> = S extends ZodTypeAny
  ? ZodInfer<S>
  : S extends (z: typeof zod) => infer T
    ? T extends ZodTypeAny ? ZodInfer<T> : never
    : S extends { [field: string]: ZodTypeAny | ((z: typeof zod) => ZodTypeAny) }
      ? { [K in keyof S]: FieldType<S[K]> }
      : Record<string, any>;

/** What an action asks the host for (the WIT `capabilities` record). */
export interface Capabilities {
  /** Origins `scheme://host[:port]`; `*` for the host, its leftmost labels or the port. */
  outboundHttp?: string[];
  /** Names of secrets the action reads as `ctx.secrets.NAME`. */
  secrets?: string[];
  /** TCP peers `ip:port`, `ip/prefix:port` or `*:port`. */
  tcp?: string[];
  /** Read the template's directory, mounted read-only at `ctx.templateDirectory`. */
  templateDirectory?: boolean;
}

/** Scheduling and audit hints; defaults: not read-only, destructive, not idempotent. */
export interface Attributes {
  readOnly?: boolean;
  destructive?: boolean;
  idempotent?: boolean;
}

export interface Logger {
  debug(message: unknown, meta?: unknown): void;
  info(message: unknown, meta?: unknown): void;
  warn(message: unknown, meta?: unknown): void;
  error(message: unknown, meta?: unknown): void;
}

export interface ActionContext<I> {
  /** The rendered input, schema-checked by the host (and parsed by zod: defaults applied). */
  input: I;
  /** Sets one field of the step's output object (`steps.<id>.output.<name>`). */
  output(name: string, value: unknown): void;
  /** Lines of the step's log (`meta` is appended as JSON). */
  logger: Logger;
  /** Absolute guest path of the workspace (`/workspace`); relative paths resolve inside it. */
  workspacePath: string;
  /** Guest path of the template's directory (read-only), when requested and granted. */
  templateDirectory?: string;
  templateInfo?: { entityRef: string; baseUrl?: string; entity?: { metadata: Record<string, unknown> } };
  user?: { ref: string; entity?: Record<string, unknown> };
  /** Set in a dry run (only for actions with `supportsDryRun`). */
  isDryRun: boolean;
  task: { id: string };
  step: { id: string; name: string };
  /** The secrets the action declared in `capabilities.secrets`; undefined when not granted or not set. */
  secrets: Record<string, string | undefined>;
  /**
   * Runs `fn` once per task: a retried step gets the value stored by an earlier run.
   * The value must be JSON-serialisable. Also `checkpoint(key, fn)`.
   */
  checkpoint<T>(opts: { key: string; fn: () => Promise<T> | T }): Promise<T>;
  checkpoint<T>(key: string, fn: () => Promise<T> | T): Promise<T>;
  /** `aborted` asks the host whether the task was cancelled. */
  signal: { readonly aborted: boolean; throwIfAborted(): void };
  /** The operator's configuration for this plugin (`host.get-config`). */
  getConfig(key: string): string | undefined;
  /** Adds a secret to the task, redacted from logs from now on. */
  addSecret(name: string, value: string): void;
}

export interface TemplateActionDefinition<S extends SchemaSpec | undefined = SchemaSpec | undefined> {
  /** Backstage-style id, `namespace:verb[:detail]`. */
  id: string;
  description?: string;
  schema?: { input?: S; output?: SchemaSpec };
  supportsDryRun?: boolean;
  examples?: { description: string; example: string }[];
  capabilities?: Capabilities;
  attributes?: Attributes;
  handler(ctx: ActionContext<InputOf<S>>): Promise<void> | void;
}

export declare function createTemplateAction<S extends SchemaSpec | undefined>(
  def: TemplateActionDefinition<S>,
): TemplateActionDefinition<S>;

/** The component's `plugin` export (the WIT `plugin` interface). */
export interface Plugin {
  describe(): unknown;
  execute(actionId: string, input: string, context: unknown): Promise<string>;
}

/** `export const plugin = definePlugin(actionA, actionB)` (or one array). */
export declare function definePlugin(...actions: TemplateActionDefinition<any>[]): Plugin;
export declare function definePlugin(actions: TemplateActionDefinition<any>[]): Plugin;

/** Ends the step with this failure kind. */
export declare class ActionError extends Error {
  constructor(kind: "invalid-input" | "failed" | "denied", message: string);
  kind: "invalid-input" | "failed" | "denied";
}

/** The input does not fit the action (fails the step as `invalidInput`). */
export declare class InputError extends ActionError {
  constructor(message: string);
}
