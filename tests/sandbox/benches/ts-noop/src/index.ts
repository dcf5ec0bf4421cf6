// The step-overhead benchmark's JavaScript guest: one action that does nothing, so a step
// costs what the sandbox and the JS engine cost.
import { createTemplateAction, definePlugin } from "@scaffolder/plugin-sdk";

export const noop = createTemplateAction({
  id: "ts:noop",
  description: "Does nothing.",
  supportsDryRun: true,
  async handler() {},
});

export const plugin = definePlugin(noop);
