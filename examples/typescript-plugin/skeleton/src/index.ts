// The plugin's actions: each is `createTemplateAction` in Backstage's shape, and
// `definePlugin` exports them all to the scaffolder. Build and test:
//   scaffolder plugin build .   and   scaffolder plugin test .
import { createTemplateAction, definePlugin, fs } from "@scaffolder/plugin-sdk";

export const greet = createTemplateAction({
  id: "${{ values.name }}:greet",
  description: "Writes a greeting into a file of the workspace.",
  supportsDryRun: true,
  schema: {
    input: (z) =>
      z
        .object({
          name: z.string().describe("Who to greet"),
          file: z.string().default("GREETING.txt").describe("The file to write, in the workspace"),
        })
        .strict(),
    output: { greeting: (z) => z.string() },
  },
  async handler(ctx) {
    const greeting = `Hello, ${ctx.input.name}!`;
    await fs.writeFile(ctx.input.file, `${greeting}\n`);
    ctx.logger.info(greeting);
    ctx.output("greeting", greeting);
  },
});

export const plugin = definePlugin(greet);
