// Dry-runs a list of requests through the real frontend client (`ScaffolderClient.dryRun` of
// @backstage/plugin-scaffolder-common 2.3.0, installed in ../conformance) against one server, and
// prints the results as one JSON array on stdout, in the order of the requests.
//
//   node dry-run.mjs REQUESTS_JSON BASE_URL [TOKEN]
//
// REQUESTS_JSON: a file holding `[{ "name": "...", "request": { template, values, secrets,
// directoryContents } }, ...]`. BASE_URL: the scaffolder plugin's base, e.g.
// http://127.0.0.1:7007/api/scaffolder. TOKEN: sent as `Authorization: Bearer TOKEN`.
//
// Each result is `{ "name", "ok": <the client's result> }` or, when the client throws,
// `{ "name", "error": { "status", "name", "message" } }` from the ResponseError's body (Backstage's
// standard error body), or `{ "name", "error": { "status": null, "name", "message" } }` for an
// error that is not a response.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// The Backstage packages ship ES modules without `"type": "module"`; load the CommonJS builds
// (see ../conformance/scaffolder-client.mjs).
const require = createRequire(new URL('../conformance/package.json', import.meta.url));
const { ScaffolderClient } = require('@backstage/plugin-scaffolder-common');

const [requestsFile, baseUrl, token] = process.argv.slice(2);
if (!requestsFile || !baseUrl) {
  console.error('usage: node dry-run.mjs REQUESTS_JSON BASE_URL [TOKEN]');
  process.exit(2);
}

const fetchApi = {
  fetch: (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (token && !headers.has('authorization')) {
      headers.set('authorization', `Bearer ${token}`);
    }
    return globalThis.fetch(input, { ...init, headers });
  },
};
const noIntegrations = { list: () => [], byUrl: () => undefined, byHost: () => undefined };
const client = new ScaffolderClient({
  discoveryApi: { getBaseUrl: async () => baseUrl.replace(/\/+$/, '') },
  fetchApi,
  identityApi: {
    getBackstageIdentity: async () => ({
      type: 'user',
      userEntityRef: 'user:default/guest',
      ownershipEntityRefs: [],
    }),
    getCredentials: async () => ({ token }),
    getProfileInfo: async () => ({}),
    signOut: async () => {},
  },
  scmIntegrationsApi: { ...noIntegrations, github: noIntegrations },
});

const requests = JSON.parse(readFileSync(requestsFile, 'utf8'));
const results = [];
for (const { name, request } of requests) {
  try {
    results.push({ name, ok: await client.dryRun(request) });
  } catch (err) {
    const body = err?.body?.error;
    results.push({
      name,
      error: {
        status: err?.response?.status ?? null,
        name: body?.name ?? err?.name ?? 'Error',
        message: body?.message ?? String(err?.message ?? err),
      },
    });
  }
}
process.stdout.write(JSON.stringify(results));
