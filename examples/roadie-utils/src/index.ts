// Ports of two actions of the public npm package @roadiehq/scaffolder-backend-module-utils
// (GitHub RoadieHQ/roadie-backstage-plugins, plugins/scaffolder-actions/
// scaffolder-backend-module-utils, version 4.1.2, src/actions/merge/merge.ts), written anew
// for @scaffolder/plugin-sdk:
//
// - `roadiehq:utils:json:merge` mirrors Roadie's action of the same id: merges `content`
//   into the JSON file at `path`, creating the file when it is missing.
// - `roadiehq:utils:merge` mirrors Roadie's action of the same id: merges `content` into an
//   existing `.json`, `.yml` or `.yaml` file; a missing file is an error.
//
// Same ids, inputs, output (`path`, the file's absolute path) and merge semantics: lodash's
// `mergeWith` (the library Roadie uses) with arrays either replaced (default) or, with
// `mergeArrays: true`, concatenated and de-duplicated; `detect-indent` for
// `matchFileIndent`; the `yaml` package for YAML. `preserveYamlComments` is implemented
// here with the `yaml` package's document model (Roadie uses `yawn-yaml`); see README.md.
import { ActionError, createTemplateAction, definePlugin, fs } from "@scaffolder/plugin-sdk";
import type { z as Z } from "@scaffolder/plugin-sdk";
import mergeWith from "lodash/mergeWith.js";
import detectIndent from "detect-indent";
import YAML, { Document, isMap, isScalar, isSeq, type Node } from "yaml";

type Zod = typeof Z;

// ---- merging -------------------------------------------------------------------------

// mergeArrays: true — an existing array gets the new value(s) appended, duplicates removed
// (by identity, as a JavaScript Set does).
function concatArrays(objValue: unknown, srcValue: unknown): unknown {
  if (Array.isArray(objValue)) return Array.from(new Set(objValue.concat(srcValue)));
  return undefined;
}

// Default: an existing array is replaced by the new value.
function replaceArrays(objValue: unknown, srcValue: unknown): unknown {
  if (Array.isArray(objValue)) return srcValue;
  return undefined;
}

function merge(existing: unknown, content: unknown, mergeArrays: boolean | undefined): any {
  return mergeWith(existing, content, mergeArrays ? concatArrays : replaceArrays);
}

// ---- paths ---------------------------------------------------------------------------

// Like Backstage's resolveSafeChildPath: `path` resolved against the workspace, refused
// when it leaves it (same message as Backstage's NotAllowedError).
function resolveInWorkspace(workspace: string, path: string): string {
  const parts: string[] = [];
  for (const seg of (path.startsWith("/") ? path : `${workspace}/${path}`).split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  const resolved = `/${parts.join("/")}`;
  const base = workspace.replace(/\/+$/, "");
  if (resolved !== base && !resolved.startsWith(`${base}/`)) {
    throw new ActionError(
      "denied",
      "Relative path is not allowed to refer to a directory outside its parent",
    );
  }
  return resolved;
}

// Node's path.extname for a POSIX path.
function extname(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return dot <= 0 ? "" : name.slice(dot);
}

// ---- schemas -------------------------------------------------------------------------

const pathInput = (z: Zod) => z.string().describe("Path of the file to merge into, relative to the workspace.");
const contentInput = (z: Zod) =>
  z
    .union([z.string(), z.record(z.any())])
    .describe("Data merged into the file: an object, or a string holding JSON (or YAML for YAML files).");
const mergeArraysInput = (z: Zod) =>
  z
    .boolean()
    .describe("true: arrays are concatenated (duplicates removed). false or unset: arrays are replaced.")
    .optional();
const pathOutput = (z: Zod) => z.string().describe("Absolute path of the file written.");

const stringType = (z: Zod) =>
  z.union([
    z.literal("BLOCK_FOLDED"),
    z.literal("BLOCK_LITERAL"),
    z.literal("QUOTE_DOUBLE"),
    z.literal("QUOTE_SINGLE"),
    z.literal("PLAIN"),
  ]);

// The same fields as Roadie's `yamlOptionsSchema`: a subset of the `yaml` package's
// ToStringOptions, passed to YAML.stringify.
const yamlOptionsInput = (z: Zod) =>
  z
    .object({
      blockQuote: z.union([z.boolean(), z.literal("folded"), z.literal("literal")]).describe("Block scalar styles for multi-line strings (yaml default: true).").optional(),
      collectionStyle: z.union([z.literal("any"), z.literal("block"), z.literal("flow")]).describe("Force block or flow style for maps and sequences (yaml default: 'any').").optional(),
      defaultKeyType: z.union([stringType(z), z.null()]).describe("Scalar style for keys (yaml default: null, i.e. as for values).").optional(),
      defaultStringType: stringType(z).describe("Scalar style for strings (yaml default: 'PLAIN').").optional(),
      directives: z.union([z.boolean(), z.null()]).describe("Whether to write directives and the --- marker (yaml default: null, only when needed).").optional(),
      doubleQuotedAsJSON: z.boolean().describe("Only JSON-compatible escapes in double-quoted strings (yaml default: false).").optional(),
      doubleQuotedMinMultiLineLength: z.number().describe("Minimum length of a double-quoted string before it may span lines (yaml default: 40).").optional(),
      falseStr: z.string().describe("How false is written (yaml default: 'false').").optional(),
      flowCollectionPadding: z.boolean().describe("Spaces inside single-line flow collections (yaml default: true).").optional(),
      indent: z.number().describe("Indentation width in spaces (yaml default: 2).").optional(),
      indentSeq: z.boolean().describe("Indent block sequences inside maps (yaml default: true).").optional(),
      lineWidth: z.number().describe("Soft maximum line width, 0 to never fold (yaml default: 80).").optional(),
      minContentWidth: z.number().describe("Minimum width of deeply indented content, 0 to disable (yaml default: 20).").optional(),
      nullStr: z.string().describe("How null is written (yaml default: 'null').").optional(),
      simpleKeys: z.boolean().describe("Require scalar keys written implicitly (yaml default: false).").optional(),
      singleQuote: z.union([z.boolean(), z.null()]).describe("Prefer single quotes (true), never use them (false), or either (null, the yaml default).").optional(),
      trueStr: z.string().describe("How true is written (yaml default: 'true').").optional(),
    })
    .describe("Options for writing YAML (YAML.stringify of the yaml package).")
    .optional();

// ---- roadiehq:utils:json:merge -------------------------------------------------------

export const jsonMerge = createTemplateAction({
  id: "roadiehq:utils:json:merge",
  description: "Merges data into a JSON file of the workspace (created when missing).",
  supportsDryRun: true,
  examples: [
    {
      description: "Add engine constraints to package.json",
      example:
        "steps:\n  - id: merge\n    action: roadiehq:utils:json:merge\n    input:\n      path: package.json\n      content:\n        engines:\n          node: '>=20'\n",
    },
  ],
  schema: {
    input: {
      path: pathInput,
      content: contentInput,
      mergeArrays: mergeArraysInput,
      matchFileIndent: (z) =>
        z.boolean().describe("Write the file with the indentation detected in it (else 2 spaces).").optional(),
    },
    output: { path: pathOutput },
  },
  async handler(ctx) {
    const file = resolveInWorkspace(ctx.workspacePath, ctx.input.path);

    let existing: unknown;
    if (await fs.exists(file)) {
      existing = JSON.parse(await fs.readFile(file, "utf8"));
    } else {
      ctx.logger.info(`The file ${file} does not exist, creating it.`);
      existing = {};
    }
    const content =
      typeof ctx.input.content === "string" ? JSON.parse(ctx.input.content) : ctx.input.content;

    let indent = 2;
    if (ctx.input.matchFileIndent) {
      // As upstream, the file is read again here: a missing file fails with ENOENT.
      indent = detectIndent(await fs.readFile(file, "utf8")).amount;
      if (!indent) {
        indent = 2;
        ctx.logger.info("Failed to detect source file indentation, using default value of 2.");
      }
    }
    await fs.writeFile(file, JSON.stringify(merge(existing, content, ctx.input.mergeArrays), null, indent));
    ctx.output("path", file);
  },
});

// ---- roadiehq:utils:merge ------------------------------------------------------------

type MergeInput = {
  path: string;
  content: string | Record<string, unknown>;
  mergeArrays?: boolean;
  preserveYamlComments?: boolean;
  useDocumentIncludingField?: { key: string; value: string };
  options?: Record<string, unknown>;
};

type Logger = { error(m: unknown): void; warn(m: unknown): void };

function fail(logger: Logger, message: string): never {
  logger.error(message);
  throw new Error(message);
}

function requireDocuments(logger: Logger, count: number) {
  if (count === 0) {
    fail(logger, "No documents found in the input content. Please provide a valid YAML file.");
  }
}

function requireIncludingField(logger: Logger, input: MergeInput): { key: string; value: string } {
  if (!input.useDocumentIncludingField) {
    fail(
      logger,
      "Multiple documents found in the input content. Please provide a key and value to use to find the document to merge into.",
    );
  }
  return input.useDocumentIncludingField;
}

// Comments dropped: every document becomes plain data, merged, and is written anew.
function mergePlain(original: string, content: unknown, input: MergeInput, logger: Logger): unknown[] {
  const docs = YAML.parseAllDocuments(original) as Document[];
  requireDocuments(logger, docs.length);
  if (docs.length === 1) return [merge(docs[0].toJSON(), content, input.mergeArrays)];
  const { key, value } = requireIncludingField(logger, input);
  return docs.map((doc) => {
    let field = doc.get(key);
    if (typeof field === "number") field = field.toString();
    if (typeof field !== "string") {
      fail(logger, `The value at "${key}" defined in useDocumentIncludingField must be a string or a number.`);
    }
    return field === value ? merge(doc.toJSON(), content, input.mergeArrays) : doc.toJSON();
  });
}

// Whether the value at a dotted path of `data` has `value` as its string form.
function hasFieldValue(data: unknown, path: string, value: string): boolean {
  if (data === null || typeof data !== "object") return false;
  let current: any = data;
  for (const key of path.split(".")) {
    if (current === undefined || current === null || current[key] === undefined) return false;
    current = current[key];
  }
  return current?.toString() === value;
}

function sameData(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Makes the node tree of `doc` at `node` hold `value`, keeping the nodes (and so their
// comments) whose data does not change. Returns the node to use in the parent.
function reconcile(doc: Document, node: unknown, value: unknown): unknown {
  if (node !== null && node !== undefined && sameData((node as any).toJSON?.() ?? node, value)) {
    return node;
  }
  if (isMap(node) && value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, v] of Object.entries(value)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === key);
      if (pair) pair.value = reconcile(doc, pair.value, v) as Node;
      else node.set(doc.createNode(key), doc.createNode(v));
    }
    return node;
  }
  if (isSeq(node) && Array.isArray(value)) {
    value.forEach((v, i) => {
      if (i < node.items.length) node.items[i] = reconcile(doc, node.items[i], v) as Node;
      else node.items.push(doc.createNode(v));
    });
    node.items.length = value.length;
    return node;
  }
  if (isScalar(node) && (value === null || typeof value !== "object")) {
    node.value = value;
    return node;
  }
  const created = doc.createNode(value);
  if (node && (node as any).commentBefore) (created as any).commentBefore = (node as any).commentBefore;
  if (node && (node as any).comment) (created as any).comment = (node as any).comment;
  return created;
}

function mergeIntoDocument(doc: Document, content: unknown, input: MergeInput): Document {
  const merged = merge(doc.toJSON(), content, input.mergeArrays);
  doc.contents = reconcile(doc, doc.contents, merged) as Node;
  return doc;
}

// Comments kept: the merged data is written back into each document's node tree. Upstream
// splits the text on `---` lines and edits it with yawn-yaml; here the `yaml` package's
// document model does the same job.
function mergeKeepingComments(original: string, content: unknown, input: MergeInput, logger: Logger): Document[] {
  const texts = original.split(/^---\s*$/m).filter((text) => text.trim() !== "");
  requireDocuments(logger, texts.length);
  const docs = texts.map((text) => {
    const doc = YAML.parseDocument(text);
    if (doc.errors.length > 0) throw doc.errors[0];
    return doc;
  });
  if (docs.length === 1) return [mergeIntoDocument(docs[0], content, input)];
  const { key, value } = requireIncludingField(logger, input);
  return docs.map((doc) =>
    hasFieldValue(doc.toJSON(), key, value) ? mergeIntoDocument(doc, content, input) : doc,
  );
}

export const mergeFile = createTemplateAction({
  id: "roadiehq:utils:merge",
  description: "Merges data into an existing JSON or YAML file of the workspace.",
  supportsDryRun: true,
  examples: [
    {
      description: "Add a label to a Kubernetes manifest, keeping its comments",
      example:
        "steps:\n  - id: merge\n    action: roadiehq:utils:merge\n    input:\n      path: deploy.yaml\n      preserveYamlComments: true\n      content:\n        metadata:\n          labels:\n            team: platform\n",
    },
  ],
  schema: {
    input: {
      path: pathInput,
      content: contentInput,
      mergeArrays: mergeArraysInput,
      preserveYamlComments: (z) =>
        z.boolean().describe("Keep comments (standalone and inline) of YAML files.").optional(),
      useDocumentIncludingField: (z) =>
        z
          .object({
            key: z.string().describe("Field looked up in each document."),
            value: z.string().describe("Value that field must have in the document to merge into."),
          })
          .describe("YAML files with several documents: which document to merge into.")
          .optional(),
      options: yamlOptionsInput,
    },
    output: { path: pathOutput },
  },
  async handler(ctx) {
    const input = ctx.input as MergeInput;
    const file = resolveInWorkspace(ctx.workspacePath, input.path);
    if (!(await fs.exists(file))) fail(ctx.logger, `The file ${file} does not exist.`);
    const original = await fs.readFile(file, "utf8");

    let merged: string | undefined;
    switch (extname(file)) {
      case ".json": {
        const content = typeof input.content === "string" ? JSON.parse(input.content) : input.content;
        merged = JSON.stringify(merge(YAML.parse(original), content, input.mergeArrays), null, 2);
        break;
      }
      case ".yml":
      case ".yaml": {
        const content = typeof input.content === "string" ? YAML.parse(input.content) : input.content;
        const write = (docs: unknown[]) =>
          docs.map((doc) => YAML.stringify(doc, input.options as any)).join("---\n");
        if (input.preserveYamlComments) {
          try {
            merged = write(mergeKeepingComments(original, content, input, ctx.logger));
          } catch (error: any) {
            ctx.logger.warn(
              `Failed to preserve YAML comments due to parsing error: ${error?.message}. Falling back to merge without comment preservation.`,
            );
            merged = write(mergePlain(original, content, input, ctx.logger));
          }
        } else {
          merged = write(mergePlain(original, content, input, ctx.logger));
        }
        break;
      }
      default:
        break;
    }
    // As upstream: other extensions (or an empty result) write nothing and output nothing.
    if (!merged) return;
    await fs.writeFile(file, merged);
    ctx.output("path", file);
  },
});

export const plugin = definePlugin(jsonMerge, mergeFile);
