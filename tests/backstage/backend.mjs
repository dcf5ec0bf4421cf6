// Minimal real Backstage backend for the Rust integration tests: the catalog
// (with the Template kind) and @backstage/plugin-scaffolder-backend 4.2.0,
// listening on loopback only. See README.md for the environment variables.
//
// Prints exactly one line `backstage listening on http://<host>:<port>` to
// stdout once GET /api/catalog/entities answers 200 and every entity written
// in BACKSTAGE_CATALOG_FILE can be fetched by name.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const started = Date.now();

// ---- environment -----------------------------------------------------------
const env = process.env;
env.BACKSTAGE_HOST ||= '127.0.0.1';
env.BACKSTAGE_PORT ||= '7007';
env.BACKSTAGE_LOG_LEVEL ||= 'info';
if (!env.BACKSTAGE_TOKEN || !/^\S{8,}$/.test(env.BACKSTAGE_TOKEN)) {
  console.error(
    'backend.mjs: set BACKSTAGE_TOKEN to a static token (>= 8 non-space characters)',
  );
  process.exit(2);
}

let catalogFile;
let expectedRefs = [];
if (env.BACKSTAGE_CATALOG_FILE) {
  catalogFile = resolve(env.BACKSTAGE_CATALOG_FILE);
  // The catalog reads the file itself; we only read it to know which
  // entities to wait for before announcing readiness.
  const { parseAllDocuments } = await import('yaml');
  for (const doc of parseAllDocuments(readFileSync(catalogFile, 'utf8'))) {
    const e = doc.toJS();
    if (e && typeof e === 'object' && e.kind && e.metadata?.name) {
      expectedRefs.push({
        kind: String(e.kind),
        namespace: String(e.metadata.namespace ?? 'default'),
        name: String(e.metadata.name),
        entity: e,
      });
    }
  }
  env.APP_CONFIG_catalog_locations = JSON.stringify([
    { type: 'file', target: catalogFile },
  ]);
}

// Use our app-config.yaml wherever we are started from, unless the caller
// passes its own --config arguments (then only those are read).
if (!process.argv.some(a => a === '--config' || a.startsWith('--config='))) {
  process.argv.push('--config', resolve(here, 'app-config.yaml'));
} else {
  // Make the caller's relative --config paths absolute before the chdir.
  for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === '--config' && process.argv[i + 1]) {
      process.argv[i + 1] = resolve(process.argv[i + 1]);
    } else if (a.startsWith('--config=')) {
      process.argv[i] = `--config=${resolve(a.slice('--config='.length))}`;
    }
  }
}
// The backend looks for a package.json upwards from the working directory
// (it throws NoPkgJsonFound from /tmp), so run from this folder. Paths from
// the environment were made absolute above.
process.chdir(here);

// ---- backend ---------------------------------------------------------------
const { createBackend } = await import('@backstage/backend-defaults');

// The plugin packages are CommonJS with `exports.default = feature`.
const feature = async spec => {
  const mod = await import(spec);
  return mod.default?.default ?? mod.default;
};

const backend = createBackend();
backend.add(feature('@backstage/plugin-catalog-backend'));
backend.add(
  feature('@backstage/plugin-catalog-backend-module-scaffolder-entity-model'),
);
backend.add(feature('@backstage/plugin-scaffolder-backend'));
// Sign-in, as a Backstage app has it: user tokens (the guest's, from
// GET /api/auth/guest/refresh) and the keys that verify them at
// /api/auth/.well-known/jwks.json.
backend.add(feature('@backstage/plugin-auth-backend'));
backend.add(feature('@backstage/plugin-auth-backend-module-guest-provider'));
await backend.start();

// ---- readiness -------------------------------------------------------------
const base = `http://${env.BACKSTAGE_HOST}:${env.BACKSTAGE_PORT}`;
const headers = { authorization: `Bearer ${env.BACKSTAGE_TOKEN}` };
const timeoutMs = Number(env.BACKSTAGE_READY_TIMEOUT_MS || 120000);
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function status(path) {
  try {
    const res = await fetch(base + path, { headers });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

while ((await status('/api/catalog/entities?limit=1')) !== 200) {
  if (Date.now() - started > timeoutMs) {
    console.error(`backend.mjs: ${base}/api/catalog/entities never answered 200`);
    process.exit(1);
  }
  await sleep(100);
}

let missing = expectedRefs;
while (missing.length > 0 && Date.now() - started < timeoutMs) {
  const next = [];
  for (const r of missing) {
    const path = `/api/catalog/entities/by-name/${encodeURIComponent(
      r.kind.toLowerCase(),
    )}/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`;
    if ((await status(path)) !== 200) next.push(r);
  }
  missing = next;
  if (missing.length > 0) await sleep(200);
}
if (missing.length > 0) {
  // The catalog does not log why it rejects an entity; ask its validator.
  for (const r of missing) {
    let why = '';
    try {
      const res = await fetch(`${base}/api/catalog/validate-entity`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ entity: r.entity, location: `url:file://${catalogFile}` }),
      });
      why = `validate-entity ${res.status}: ${await res.text()}`;
    } catch (e) {
      why = String(e);
    }
    console.error(
      `backend.mjs: WARNING: ${r.kind}:${r.namespace}/${r.name} not in the catalog after ${timeoutMs} ms; ${why}`,
    );
  }
}

console.log(`backstage listening on ${base}`);
console.error(
  `backend.mjs: ready after ${Date.now() - started} ms (process uptime ${Math.round(
    process.uptime() * 1000,
  )} ms)`,
);
