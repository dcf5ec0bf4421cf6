// An example plugin in TypeScript: two actions built with @scaffolder/plugin-sdk.
// Build: npm ci && npx scaffolder-plugin-build   → dist/ts-plugin.wasm
import { createTemplateAction, definePlugin, fs, InputError, z } from "@scaffolder/plugin-sdk";

export const hello = createTemplateAction({
  id: "example:hello",
  description: "Writes a greeting into a file of the workspace.",
  supportsDryRun: true,
  examples: [
    {
      description: "Greet the template's user in greeting.txt",
      example: "steps:\n  - id: hello\n    action: example:hello\n    input:\n      name: World\n",
    },
  ],
  schema: {
    input: (z) =>
      z.object({
        name: z.string().min(1).describe("Who to greet"),
        path: z.string().default("greeting.txt").describe("File to write, relative to the workspace"),
      }),
    output: (z) => z.object({ path: z.string(), bytes: z.number() }),
  },
  attributes: { readOnly: false, destructive: true, idempotent: true },
  async handler(ctx) {
    const { name, path } = ctx.input;
    if (path.startsWith("/") || path.split("/").includes("..")) {
      throw new InputError(`input.path must stay inside the workspace, got ${path}`);
    }
    const text = `Hello, ${name}!\n`;
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
    if (dir) await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path, text);
    const size = (await fs.stat(path)).size;
    ctx.logger.info(`wrote ${size} bytes to ${path}${ctx.isDryRun ? " (dry run)" : ""}`);
    ctx.output("path", path);
    ctx.output("bytes", size);
  },
});

const Release = z.object({ tag_name: z.string(), name: z.string().nullable().optional() });

export const latestRelease = createTemplateAction({
  id: "example:github:latest-release",
  description: "Looks up the latest release of a GitHub repository.",
  capabilities: { outboundHttp: ["https://api.github.com"] },
  attributes: { readOnly: true, destructive: false, idempotent: true },
  schema: {
    input: {
      repo: (z) => z.string().regex(/^[\w.-]+\/[\w.-]+$/).describe("owner/name"),
      apiBaseUrl: (z) => z.string().url().default("https://api.github.com").describe("GitHub API root"),
    },
    output: { tag: (z) => z.string() },
  },
  async handler(ctx) {
    const url = `${ctx.input.apiBaseUrl}/repos/${ctx.input.repo}/releases/latest`;
    ctx.logger.info(`GET ${url}`);
    const res = await fetch(url, {
      headers: { accept: "application/vnd.github+json", "user-agent": "scaffolder-ts-plugin" },
    });
    if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}`);
    const release = Release.parse(await res.json());
    ctx.output("tag", release.tag_name);
  },
});

// Reads any path it is given: shows that the sandbox, not the plugin, decides what is
// reachable (`/etc/passwd` is refused, and the step fails as denied).
export const readFile = createTemplateAction({
  id: "example:read-file",
  description: "Returns the text of a file (workspace-relative or absolute).",
  supportsDryRun: true,
  attributes: { readOnly: true, destructive: false, idempotent: true },
  schema: {
    input: { path: (z) => z.string() },
    output: { text: (z) => z.string() },
  },
  async handler(ctx) {
    ctx.output("text", await fs.readFile(ctx.input.path, "utf8"));
  },
});

export const plugin = definePlugin(hello, latestRelease, readFile);
