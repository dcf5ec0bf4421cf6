// Computes what Backstage 4.3.0 does with each case of cases.in.json, with the real
// `resolveParameterSteps` of @backstage/plugin-scaffolder-common 2.4.0, fed as the
// scaffolder-backend 4.3.0 router feeds it (each page with its own `when`), and prints
// the expectations `cases.json` holds. See README.md beside this file.
const { resolveParameterSteps } = require('@backstage/plugin-scaffolder-common/alpha');
const fs = require('fs');
const path = require('path');
const cases = JSON.parse(fs.readFileSync(path.join(__dirname, 'cases.in.json'), 'utf8'));
const out = cases.map(c => {
  const pages = [c.pages].flat();
  const resolved = resolveParameterSteps(c.values, pages.map(schema => ({ schema, when: schema.when })));
  return { ...c, expected: resolved };
});
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
