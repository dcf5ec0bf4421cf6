// @scaffolder/plugin-sdk: template actions in JavaScript or TypeScript, in the shape of
// Backstage's `createTemplateAction`, exported through the `scaffolder:action@0.1.1` WIT
// world. The bundle this file ends up in is built into a component by
// `scaffolder-plugin-build` (componentize-js); the `scaffolder:*` and `wasi:*` imports are
// the component's imports, resolved there.
//
// Top-level code runs once at build time and is snapshotted, so `definePlugin` computes
// everything `describe` returns (JSON Schemas included) when the module loads.

import * as host from "scaffolder:action/host@0.1.1";
import { z } from "zod";
import { zodToJsonSchema } from "zod-to-json-schema";
import { setWorkspace } from "./fs.js";

export { z };
export { fs } from "./fs.js";

// `fetch` is StarlingMonkey's global, sent through `wasi:http`; the host lets through the
// origins the action requested in `capabilities.outboundHttp` and the operator granted.
// StarlingMonkey reports every refusal as a bare "NetworkError when attempting to fetch
// resource", so the SDK wraps it: the message names the URL, and says so when the origin
// is not among the running action's requested ones (the host then refuses it for sure).
const engineFetch = globalThis.fetch;
let requestedOrigins = null; // the running action's capabilities.outboundHttp

const DEFAULT_PORTS = { "http:": "80", "https:": "443" };

// Whether `url` fits an origin pattern `scheme://host[:port]` as the WIT describes it
// (`*` host, `*.example.com`, `*` port; no port = the scheme's default). Anything this
// cannot parse counts as a match: the SDK only speaks for refusals it is sure of.
function originMatches(pattern, url) {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(\*|\[[^\]]*\]|[^:/]+)(?::(\*|\d+))?\/?$/i.exec(pattern);
  if (!m) return true;
  const [, scheme, host, port] = m;
  if (scheme.toLowerCase() + ":" !== url.protocol) return false;
  const h = url.hostname.toLowerCase();
  const p = host.toLowerCase();
  const hostOk = p === "*" || (p.startsWith("*.") ? h.endsWith(p.slice(1)) : h === p);
  const urlPort = url.port || DEFAULT_PORTS[url.protocol];
  const portOk = port === "*" || (port || DEFAULT_PORTS[url.protocol]) === urlPort;
  return hostOk && portOk;
}

/** StarlingMonkey's `fetch`, with refusals worded (see above). Also installed as the global. */
export async function fetch(input, init) {
  try {
    return await engineFetch(input, init);
  } catch (e) {
    if (!(e instanceof TypeError) || !/NetworkError/.test(e.message)) throw e;
    const href = typeof input === "string" ? input : input && (input.url || input.href);
    let message = `fetch ${href}: ${e.message}`;
    let url;
    try {
      url = new URL(String(href));
    } catch {
      url = undefined;
    }
    if (url && requestedOrigins && !requestedOrigins.some((p) => originMatches(p, url)))
      message += ` (denied: its origin is not granted to this action: ${url.origin} is not in its capabilities.outboundHttp)`;
    throw new TypeError(message, { cause: e });
  }
}
if (typeof engineFetch === "function") globalThis.fetch = fetch;

/** An error that ends the step with the given kind: `invalid-input`, `failed` or `denied`. */
export class ActionError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "ActionError";
    this.kind = kind;
  }
}

/** The input does not fit the action (Backstage's `InputError`). */
export class InputError extends ActionError {
  constructor(message) {
    super("invalid-input", message);
    this.name = "InputError";
  }
}

const KINDS = new Set(["invalid-input", "failed", "denied"]);

const isZod = (s) => s != null && typeof s === "object" && typeof s.safeParse === "function";

// `schema.input` / `schema.output` as Backstage accepts them: a JSON Schema object, a zod
// schema, a function `(z) => zodSchema`, or a record of fields each a zod schema or a
// function `(z) => zodSchema`. Returns a zod schema or a JSON Schema object (or undefined).
function toSchema(s, where) {
  if (s == null) return undefined;
  if (typeof s === "function") {
    const made = s(z);
    if (!isZod(made)) throw new Error(`${where}: the function must return a zod schema`);
    return made;
  }
  if (isZod(s)) return s;
  if (typeof s !== "object") throw new Error(`${where}: expected a JSON Schema, a zod schema or (z) => schema`);
  const values = Object.values(s);
  const isFieldRecord =
    values.length > 0 && values.every((v) => isZod(v) || typeof v === "function");
  if (isFieldRecord) {
    const shape = {};
    for (const [k, v] of Object.entries(s)) shape[k] = toSchema(v, `${where}.${k}`);
    return z.object(shape);
  }
  return s; // a JSON Schema object
}

function jsonSchemaOf(s, where) {
  if (s === undefined) return undefined;
  if (!isZod(s)) return s;
  if (s._zod !== undefined)
    throw new Error(`${where}: a zod 4 schema; use the \`z\` of @scaffolder/plugin-sdk (zod 3), which the SDK converts to JSON Schema`);
  return zodToJsonSchema(s, { target: "jsonSchema7", $refStrategy: "none" });
}

const list = (v, name, id) => {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw new Error(`action ${id}: capabilities.${name} must be a list of strings`);
  return v;
};

/**
 * Defines one action. Returns the definition; `definePlugin` turns a list of them into
 * the component's `plugin` export.
 */
export function createTemplateAction(def) {
  if (!def || typeof def !== "object") throw new Error("createTemplateAction needs an object");
  if (typeof def.id !== "string" || def.id === "") throw new Error("createTemplateAction: `id` is required");
  if (typeof def.handler !== "function") throw new Error(`action ${def.id}: \`handler\` must be a function`);
  return def;
}

function actionInfo(def) {
  const id = def.id;
  const input = toSchema(def.schema && def.schema.input, `action ${id}: schema.input`);
  const output = toSchema(def.schema && def.schema.output, `action ${id}: schema.output`);
  const caps = def.capabilities || {};
  const known = new Set(["outboundHttp", "secrets", "tcp", "templateDirectory"]);
  for (const k of Object.keys(caps))
    if (!known.has(k))
      throw new Error(`action ${id}: unknown capability '${k}' (known: ${[...known].join(", ")})`);
  const attrs = def.attributes || {};
  const info = {
    id,
    description: def.description || "",
    inputSchema: JSON.stringify(jsonSchemaOf(input, `action ${id}: schema.input`) || { type: "object" }),
    outputSchema:
      output === undefined ? undefined : JSON.stringify(jsonSchemaOf(output, `action ${id}: schema.output`)),
    supportsDryRun: !!def.supportsDryRun,
    examples: (def.examples || []).map((e) => ({
      description: String(e.description || ""),
      example: String(e.example || ""),
    })),
    capabilities: {
      outboundHttp: list(caps.outboundHttp, "outboundHttp", id),
      secrets: list(caps.secrets, "secrets", id),
      tcp: list(caps.tcp, "tcp", id),
      templateDirectory: !!caps.templateDirectory,
    },
    // The cautious defaults of the WIT: not read-only, destructive, not idempotent.
    attributes: {
      readOnly: attrs.readOnly ?? false,
      destructive: attrs.destructive ?? true,
      idempotent: attrs.idempotent ?? false,
    },
  };
  return { def, input, info };
}

// A message for anything thrown: Errors by message, imports' errors (ComponentError, not an
// Error) by their payload.
function messageOf(e) {
  if (e instanceof Error) return e.message || String(e);
  if (e != null && typeof e === "object") {
    if ("payload" in e) return typeof e.payload === "string" ? e.payload : JSON.stringify(e.payload);
    if (typeof e.message === "string") return e.message;
    try {
      return JSON.stringify(e);
    } catch {
      return String(e);
    }
  }
  return String(e);
}

function toActionError(e) {
  if (e instanceof ActionError && KINDS.has(e.kind)) return { tag: e.kind, val: e.message };
  if (e != null && typeof e === "object" && KINDS.has(e.tag) && typeof e.val === "string") return e;
  return { tag: "failed", val: messageOf(e) };
}

const text = (message, meta) => {
  let line = typeof message === "string" ? message : messageOf(message);
  if (meta !== undefined) {
    try {
      line += " " + JSON.stringify(meta);
    } catch {
      line += " " + String(meta);
    }
  }
  return line;
};

function makeContext(entry, input, c, outputs) {
  const declared = entry.info.capabilities.secrets;
  const secrets = {};
  for (const name of declared) {
    Object.defineProperty(secrets, name, {
      enumerable: true,
      get: () => host.getSecret(name) ?? undefined,
    });
  }
  const logger = {};
  for (const level of ["debug", "info", "warn", "error"])
    logger[level] = (message, meta) => host.log(level, text(message, meta));

  const template = c.template
    ? {
        entityRef: c.template.entityRef,
        baseUrl: c.template.baseUrl,
        entity: c.template.metadata ? { metadata: JSON.parse(c.template.metadata) } : undefined,
      }
    : undefined;

  return {
    input,
    output(name, value) {
      if (typeof name !== "string" || name === "") throw new Error("ctx.output: the name must be a non-empty string");
      outputs[name] = value;
    },
    logger,
    workspacePath: c.workspace,
    templateDirectory: c.templateDirectory,
    templateInfo: template,
    user: c.userRef
      ? { ref: c.userRef, entity: c.userEntity ? JSON.parse(c.userEntity) : undefined }
      : undefined,
    isDryRun: c.dryRun,
    task: { id: c.taskId },
    step: { id: c.stepId, name: c.stepName },
    secrets,
    async checkpoint(opts, maybeFn) {
      // Backstage's `checkpoint({ key, fn })`, and its older `checkpoint(key, fn)`.
      const { key, fn } = typeof opts === "string" ? { key: opts, fn: maybeFn } : opts || {};
      if (typeof key !== "string" || typeof fn !== "function")
        throw new Error("ctx.checkpoint needs { key: string, fn: () => value }");
      const prev = host.checkpointGet(key);
      if (prev && prev.tag === "success") return prev.val === "" ? undefined : JSON.parse(prev.val);
      let value;
      try {
        value = await fn();
      } catch (e) {
        host.checkpointSet(key, { tag: "failed", val: messageOf(e) });
        throw e;
      }
      host.checkpointSet(key, { tag: "success", val: value === undefined ? "" : JSON.stringify(value) });
      return value;
    },
    signal: {
      get aborted() {
        return host.isCancelled();
      },
      throwIfAborted() {
        if (host.isCancelled()) throw new ActionError("failed", "the task was cancelled");
      },
    },
    getConfig: (key) => host.getConfig(key) ?? undefined,
    addSecret: (name, value) => host.addSecret(name, value),
  };
}

/**
 * The component's `plugin` export for these actions: `export const plugin = definePlugin(a, b)`.
 * Also accepts one array.
 */
export function definePlugin(...actions) {
  if (actions.length === 1 && Array.isArray(actions[0])) actions = actions[0];
  if (actions.length === 0) throw new Error("definePlugin needs at least one action");
  const byId = new Map();
  for (const def of actions) {
    const entry = actionInfo(createTemplateAction(def));
    if (byId.has(entry.info.id)) throw new Error(`two actions have the id ${entry.info.id}`);
    byId.set(entry.info.id, entry);
  }
  const infos = [...byId.values()].map((e) => e.info);

  async function execute(actionId, inputJson, c) {
    const entry = byId.get(actionId);
    if (!entry) throw { tag: "invalid-input", val: `this plugin has no action ${actionId}` };
    setWorkspace(c.workspace);
    requestedOrigins = entry.info.capabilities.outboundHttp;
    let input = JSON.parse(inputJson);
    if (isZod(entry.input)) {
      const parsed = entry.input.safeParse(input);
      if (!parsed.success) {
        const issues = parsed.error.issues.map(
          (i) => `${i.path.length ? "input." + i.path.join(".") : "input"}: ${i.message}`,
        );
        throw { tag: "invalid-input", val: issues.join("; ") };
      }
      input = parsed.data;
    }
    const outputs = {};
    try {
      await entry.def.handler(makeContext(entry, input, c, outputs));
    } catch (e) {
      throw toActionError(e);
    }
    return JSON.stringify(outputs);
  }

  return {
    describe: () => ({ actions: infos }),
    execute,
  };
}
