// Conformance check: drive a scaffolder backend with the REAL frontend client
// (`ScaffolderClient` from @backstage/plugin-scaffolder-common 2.3.0).
//
// Environment:
//   SCAFFOLDER_BASE_URL           plugin base URL, e.g. http://127.0.0.1:7123/api/scaffolder (required)
//   SCAFFOLDER_TOKEN              optional; when set every request carries `Authorization: Bearer <token>`
//   SCAFFOLDER_TEMPLATE_REF       template that completes successfully (default template:default/conformance)
//   SCAFFOLDER_SLOW_TEMPLATE_REF  template whose first step sleeps long enough to be cancelled
//                                 (default template:default/conformance-slow)
//   SCAFFOLDER_USER_REF           user entity ref returned by identityApi (default user:default/guest)
//   SCAFFOLDER_TEMPLATE_JSON      path to a JSON file holding the conformance template entity, used for
//                                 dryRun (when unset the dryRun check is reported as skipped)
//   SCAFFOLDER_TIMEOUT_MS         per-stream timeout (default 60000)
//   SCAFFOLDER_CHECK_ONLY=1       only load the package and construct the clients, then exit 0
//
// Output: one `ok - <name>` line per passed check; the first failure prints `not ok - <name>` with
// the reason and exits with code 1.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// The Backstage packages ship `dist/*.esm.js` files that are ES modules without `"type": "module"`;
// only Node versions with module-syntax detection can import them. The CommonJS builds contain the
// same code and load on every Node 20, so load those.
const require = createRequire(import.meta.url);
const { ScaffolderClient } = require('@backstage/plugin-scaffolder-common');
// Resolve transitive dependencies from the client's own location so we get the very same module
// instances the client uses (`instanceof ResponseError` then works).
const requireFromClient = createRequire(
  require.resolve('@backstage/plugin-scaffolder-common'),
);
const { ResponseError } = requireFromClient('@backstage/errors');
const { parseEntityRef, stringifyEntityRef } = requireFromClient(
  '@backstage/catalog-model',
);

// ---------------------------------------------------------------------------------------------
// Browser shim for @microsoft/fetch-event-source (used by streamLogs in SSE mode).
// Even with `openWhenHidden: true` (which ScaffolderClient passes) its `dispose()` calls
// `document.removeEventListener('visibilitychange', ...)` and `window.clearTimeout(...)`
// unconditionally, and its retry path calls `window.setTimeout(...)`. `dispose()` runs inside the
// AbortSignal listener when the client aborts after the `completion` event, so without these
// globals Node would throw a ReferenceError from an event listener (an uncaught exception).
// `document.hidden` is only read when openWhenHidden is false. A minimal object is used instead
// of `window = globalThis` so that no library starts believing it runs in a browser.
if (typeof globalThis.document === 'undefined') {
  globalThis.document = {
    hidden: false,
    addEventListener() {},
    removeEventListener() {},
  };
}
if (typeof globalThis.window === 'undefined') {
  globalThis.window = {
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: id => clearTimeout(id),
    fetch: (...args) => globalThis.fetch(...args),
  };
}
// ---------------------------------------------------------------------------------------------

const env = process.env;
const CHECK_ONLY = env.SCAFFOLDER_CHECK_ONLY === '1';
const BASE_URL = (
  env.SCAFFOLDER_BASE_URL ||
  (CHECK_ONLY ? 'http://127.0.0.1:1/api/scaffolder' : '')
).replace(/\/+$/, '');
const TOKEN = env.SCAFFOLDER_TOKEN || undefined;
const TEMPLATE_REF = env.SCAFFOLDER_TEMPLATE_REF || 'template:default/conformance';
const SLOW_TEMPLATE_REF =
  env.SCAFFOLDER_SLOW_TEMPLATE_REF || 'template:default/conformance-slow';
const USER_REF = env.SCAFFOLDER_USER_REF || 'user:default/guest';
const TEMPLATE_JSON = env.SCAFFOLDER_TEMPLATE_JSON || undefined;
const TIMEOUT_MS = Number(env.SCAFFOLDER_TIMEOUT_MS || 60000);

if (!BASE_URL) {
  console.error('not ok - SCAFFOLDER_BASE_URL is not set');
  process.exit(1);
}

// --- the API objects the client needs --------------------------------------------------------

const discoveryApi = {
  async getBaseUrl(pluginId) {
    if (pluginId !== 'scaffolder') {
      throw new Error(`discoveryApi: unexpected plugin id '${pluginId}'`);
    }
    return BASE_URL;
  },
};

// Mirrors the app's FetchApi: adds the identity token to every request. The client passes
// headers as a plain object (generated calls) and fetch-event-source passes `{ accept }`.
const fetchApi = {
  fetch: (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (TOKEN && !headers.has('authorization')) {
      headers.set('authorization', `Bearer ${TOKEN}`);
    }
    return globalThis.fetch(input, { ...init, headers });
  },
};

// Only `getBackstageIdentity` is used (by listTasks).
const identityApi = {
  async getBackstageIdentity() {
    return {
      type: 'user',
      userEntityRef: USER_REF,
      ownershipEntityRefs: [USER_REF],
    };
  },
  async getCredentials() {
    return { token: TOKEN };
  },
  async getProfileInfo() {
    return {};
  },
  async signOut() {},
};

// ScmIntegrationRegistry stub: the client only touches it in getIntegrationsList(), which is
// computed locally (no HTTP), so empty lists are enough.
const emptyIntegrations = { list: () => [], byUrl: () => undefined, byHost: () => undefined };
const scmIntegrationsApi = {
  azure: emptyIntegrations,
  awsCodeCommit: emptyIntegrations,
  awsS3: emptyIntegrations,
  bitbucket: emptyIntegrations,
  bitbucketCloud: emptyIntegrations,
  bitbucketServer: emptyIntegrations,
  gerrit: emptyIntegrations,
  gitea: emptyIntegrations,
  github: emptyIntegrations,
  gitlab: emptyIntegrations,
  harness: emptyIntegrations,
  list: () => [],
  byUrl: () => undefined,
  byHost: () => undefined,
  resolveUrl: ({ url }) => url,
  resolveEditUrl: url => url,
};

const clientOptions = { discoveryApi, fetchApi, identityApi, scmIntegrationsApi };
const sseClient = new ScaffolderClient(clientOptions);
const pollClient = new ScaffolderClient({ ...clientOptions, useLongPollingLogs: true });

// --- helpers -----------------------------------------------------------------------------------

let current = '(startup)';

async function check(name, fn) {
  current = name;
  const started = Date.now();
  const note = await fn();
  const ms = Date.now() - started;
  console.log(`ok - ${name}`);
  console.log(`#   ${note ? `${note}; ` : ''}${ms} ms`);
}

function fail(err) {
  console.error(`not ok - ${current}`);
  if (err instanceof assert.AssertionError) {
    console.error(`  ${err.message.split('\n').join('\n  ')}`);
  } else {
    console.error(`  ${err?.stack ?? err}`);
    if (err?.cause) console.error(`  caused by: ${err.cause?.stack ?? err.cause}`);
    if (err?.body) console.error(`  response body: ${JSON.stringify(err.body)}`);
  }
  process.exit(1);
}

process.on('unhandledRejection', fail);
process.on('uncaughtException', fail);

/**
 * Subscribes to a streamLogs observable and resolves once it completes. Observer callbacks only
 * record (zen-observable would swallow and re-throw asynchronously anything thrown in them);
 * `onEvent` may return a promise, whose rejection fails the collection.
 */
function collect(observable, { onEvent, label = 'stream', timeoutMs = TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const events = [];
    let settled = false;
    let subscription;
    const timer = setTimeout(() => {
      settled = true;
      subscription?.unsubscribe();
      reject(
        new Error(
          `${label}: no completion within ${timeoutMs} ms; events so far:\n${dump(events)}`,
        ),
      );
    }, timeoutMs);
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    };
    subscription = observable.subscribe({
      next(event) {
        events.push({ ...event, receivedAt: Date.now() });
        if (onEvent) {
          Promise.resolve()
            .then(() => onEvent(event, events))
            .catch(err => {
              subscription?.unsubscribe();
              finish(err);
            });
        }
      },
      error(err) {
        const e = new Error(`${label}: observable errored: ${err?.message ?? err}`);
        e.cause = err;
        finish(e);
      },
      complete() {
        // Let pending onEvent work (e.g. an in-flight cancelTask) settle first.
        setImmediate(() => finish(null, events));
      },
    });
  });
}

const strip = ({ receivedAt, ...event }) => event;
const dump = events => events.map(e => `    ${JSON.stringify(strip(e))}`).join('\n');
const isIso = s =>
  typeof s === 'string' &&
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) &&
  !Number.isNaN(Date.parse(s));
const isObject = v => typeof v === 'object' && v !== null && !Array.isArray(v);

function assertEventShapes(events, taskId) {
  const types = new Set(['log', 'completion', 'cancelled', 'recovered']);
  for (const e of events) {
    assert.equal(typeof e.id, 'number', `event id must be a number:\n${dump([e])}`);
    assert.equal(e.taskId, taskId, `event taskId mismatch:\n${dump([e])}`);
    assert.ok(types.has(e.type), `unknown event type ${e.type}:\n${dump([e])}`);
    assert.ok(isObject(e.body), `event body must be an object:\n${dump([e])}`);
    assert.ok(isIso(e.createdAt), `event createdAt must be ISO-8601:\n${dump([e])}`);
    if (e.type !== 'recovered') {
      assert.equal(typeof e.body.message, 'string', `event body.message missing:\n${dump([e])}`);
    }
  }
  for (let i = 1; i < events.length; i++) {
    assert.ok(
      events[i].id > events[i - 1].id,
      `event ids must be strictly increasing:\n${dump(events)}`,
    );
  }
}

function assertEndsWithCompletion(events, message) {
  const last = events[events.length - 1];
  assert.ok(last, 'stream delivered no events');
  assert.equal(last.type, 'completion', `last event must be the completion:\n${dump(events)}`);
  assert.equal(
    events.filter(e => e.type === 'completion').length,
    1,
    `exactly one completion expected:\n${dump(events)}`,
  );
  if (message !== undefined) {
    assert.equal(last.body.message, message, `completion message:\n${dump([last])}`);
  }
  return last;
}

/** Asserts that an error thrown by scaffold() is `Backend request failed, <status> ...`. */
function parseScaffoldError(err, status) {
  assert.ok(err instanceof Error, `expected an Error, got ${err}`);
  const prefix = `Backend request failed, ${status}`;
  assert.ok(
    err.message.startsWith(prefix),
    `expected message starting with '${prefix}', got: ${err.message}`,
  );
  const brace = err.message.indexOf('{');
  assert.ok(brace >= 0, `expected a JSON body in the message: ${err.message}`);
  try {
    return JSON.parse(err.message.slice(brace));
  } catch {
    assert.fail(`body in the error message is not JSON: ${err.message}`);
  }
}

// --- checks ------------------------------------------------------------------------------------

async function main() {
  if (CHECK_ONLY) {
    await check('client constructed', async () => {
      assert.equal(typeof sseClient.streamLogs, 'function');
      assert.equal(pollClient.useLongPollingLogs, true);
      assert.equal(sseClient.useLongPollingLogs, false);
      // Purely local; proves the stub satisfies the client.
      assert.deepEqual(await sseClient.getIntegrationsList({ allowedHosts: [] }), {
        integrations: [],
      });
    });
    process.exit(0);
  }

  console.log(`# base url ${BASE_URL}${TOKEN ? ' (with token)' : ''}`);
  const normalizedTemplateRef = stringifyEntityRef(
    parseEntityRef(TEMPLATE_REF, { defaultKind: 'template', defaultNamespace: 'default' }),
  );

  await check('listActions', async () => {
    const actions = await sseClient.listActions();
    assert.ok(Array.isArray(actions), 'listActions must return an array');
    assert.ok(actions.length > 0, 'listActions returned no actions');
    for (const a of actions) {
      assert.equal(typeof a.id, 'string', `action without id: ${JSON.stringify(a)}`);
      assert.ok(isObject(a.schema), `action ${a.id} has no schema object`);
      assert.ok(isObject(a.schema.input), `action ${a.id} has no schema.input object`);
    }
    const ids = actions.map(a => a.id);
    const sorted = [...ids].sort((a, b) => a.localeCompare(b));
    assert.deepEqual(ids, sorted, 'actions must be sorted by id (localeCompare)');
    return `${actions.length} actions`;
  });

  await check('getTemplateParameterSchema', async () => {
    const schema = await sseClient.getTemplateParameterSchema(TEMPLATE_REF);
    assert.equal(typeof schema.title, 'string', 'title must be a string');
    assert.ok(Array.isArray(schema.steps), 'steps must be an array');
    for (const step of schema.steps) {
      assert.equal(typeof step.title, 'string', `step without title: ${JSON.stringify(step)}`);
      assert.ok(isObject(step.schema), `step without schema: ${JSON.stringify(step)}`);
    }
    return `${schema.steps.length} pages`;
  });

  let taskId;
  await check('scaffold', async () => {
    const result = await sseClient.scaffold({
      templateRef: TEMPLATE_REF,
      values: { name: 'conformance' },
    });
    assert.equal(typeof result.taskId, 'string', `no taskId in ${JSON.stringify(result)}`);
    assert.match(result.taskId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    taskId = result.taskId;
    return taskId;
  });

  let sseEvents;
  let declaredSteps;
  await check('streamLogs (SSE)', async () => {
    sseEvents = await collect(sseClient.streamLogs({ taskId }), { label: 'SSE streamLogs' });
    assertEventShapes(sseEvents, taskId);
    const first = sseEvents[0];
    assert.ok(first, 'no events streamed');
    assert.equal(first.type, 'log', `first event must be a log:\n${dump(sseEvents)}`);
    const m = /^Starting up task with (\d+) steps$/.exec(first.body.message);
    assert.ok(m, `first message must be 'Starting up task with N steps':\n${dump([first])}`);
    declaredSteps = Number(m[1]);

    const stepEvents = sseEvents.filter(e => e.type === 'log' && e.body.stepId && e.body.status);
    assert.ok(stepEvents.length > 0, `no step status events:\n${dump(sseEvents)}`);
    const byStep = new Map();
    for (const e of stepEvents) {
      assert.equal(typeof e.body.stepId, 'string', `stepId must be a string:\n${dump([e])}`);
      byStep.set(e.body.stepId, [...(byStep.get(e.body.stepId) ?? []), e.body.status]);
    }
    for (const [stepId, statuses] of byStep) {
      assert.deepEqual(
        statuses,
        ['processing', 'completed'],
        `step ${stepId} statuses must be processing then completed:\n${dump(sseEvents)}`,
      );
    }
    const completion = assertEndsWithCompletion(
      sseEvents,
      'Run completed with status: completed',
    );
    assert.ok(
      completion.body.output === undefined || isObject(completion.body.output),
      `completion body.output must be an object:\n${dump([completion])}`,
    );
    return `${sseEvents.length} events, ${byStep.size} steps`;
  });

  await check('streamLogs (long polling)', async () => {
    const events = await collect(pollClient.streamLogs({ taskId }), {
      label: 'long-polling streamLogs',
    });
    assertEventShapes(events, taskId);
    assert.deepEqual(
      events.map(e => e.id),
      sseEvents.map(e => e.id),
      `long polling must see the same event ids as SSE:\nSSE:\n${dump(sseEvents)}\npolling:\n${dump(events)}`,
    );
    return `${events.length} events`;
  });

  let task;
  await check('getTask', async () => {
    task = await sseClient.getTask(taskId);
    assert.equal(task.id, taskId);
    assert.equal(task.status, 'completed', `status: ${JSON.stringify(task)}`);
    assert.equal(task.spec?.templateInfo?.entityRef, normalizedTemplateRef);
    assert.ok(isIso(task.createdAt), `createdAt must be ISO-8601: ${task.createdAt}`);
    assert.ok(Array.isArray(task.spec.steps), 'spec.steps must be an array');
    assert.equal(
      task.spec.steps.length,
      declaredSteps,
      "spec.steps.length must match 'Starting up task with N steps'",
    );
    assert.ok(!('secrets' in task), 'task must not expose secrets');
    return task.createdBy ? `createdBy ${task.createdBy}` : 'no createdBy';
  });

  await check('listTasks', async () => {
    const all = await sseClient.listTasks({ filterByOwnership: 'all' });
    assert.ok(Array.isArray(all.tasks), `tasks must be an array: ${JSON.stringify(all)}`);
    assert.equal(typeof all.totalTasks, 'number', 'totalTasks must be a number');
    assert.ok(all.totalTasks >= all.tasks.length, 'totalTasks < tasks.length');
    const mine = all.tasks.find(t => t.id === taskId);
    assert.ok(mine, `task ${taskId} not in listTasks({filterByOwnership:'all'})`);
    assert.equal(mine.status, 'completed');

    const one = await sseClient.listTasks({ filterByOwnership: 'all', limit: 1 });
    assert.equal(one.tasks.length, 1, 'limit: 1 must return one task');
    assert.equal(typeof one.totalTasks, 'number', 'totalTasks must be a number');
    assert.ok(one.totalTasks >= 1);

    const owned = await sseClient.listTasks({ filterByOwnership: 'owned' });
    assert.ok(Array.isArray(owned.tasks), 'owned tasks must be an array');
    assert.equal(typeof owned.totalTasks, 'number', 'owned totalTasks must be a number');
    for (const t of owned.tasks) {
      assert.equal(t.createdBy, USER_REF, `owned list returned a foreign task: ${t.id}`);
    }
    if (task.createdBy === USER_REF) {
      assert.ok(
        owned.tasks.some(t => t.id === taskId),
        `task created by ${USER_REF} missing from the owned list`,
      );
    }
    return `total ${all.totalTasks}, owned ${owned.totalTasks}`;
  });

  // Cancel --------------------------------------------------------------------------------------
  let slowTaskId;
  let slowEvents;
  await check('cancelTask', async () => {
    ({ taskId: slowTaskId } = await sseClient.scaffold({
      templateRef: SLOW_TEMPLATE_REF,
      values: { name: 'slow' },
    }));
    let cancelStartedAt;
    let cancelPromise;
    let processingStepId;
    slowEvents = await collect(sseClient.streamLogs({ taskId: slowTaskId }), {
      label: 'SSE streamLogs of the slow task',
      async onEvent(event) {
        if (
          cancelStartedAt === undefined &&
          event.type === 'log' &&
          event.body?.stepId &&
          event.body?.status === 'processing'
        ) {
          cancelStartedAt = Date.now();
          processingStepId = event.body.stepId;
          cancelPromise = sseClient.cancelTask(slowTaskId);
          await cancelPromise;
        }
      },
    });
    assert.ok(cancelStartedAt, `no processing step event before the end:\n${dump(slowEvents)}`);
    assert.deepEqual(await cancelPromise, { status: 'cancelled' });
    assertEventShapes(slowEvents, slowTaskId);
    const cancelled = slowEvents.find(e => e.type === 'cancelled');
    assert.ok(cancelled, `no cancelled event:\n${dump(slowEvents)}`);
    assert.equal(cancelled.body.status, 'cancelled', `cancelled event:\n${dump([cancelled])}`);
    assert.equal(cancelled.body.stepId, processingStepId, `cancelled event:\n${dump([cancelled])}`);
    assert.equal(
      cancelled.body.message,
      `Step ${processingStepId} has been cancelled.`,
      `cancelled event:\n${dump([cancelled])}`,
    );
    assert.ok(
      slowEvents.some(
        e => e.type === 'log' && e.body.stepId === processingStepId && e.body.status === 'failed',
      ),
      `the cancelled step must end with a failed status event:\n${dump(slowEvents)}`,
    );
    const completion = assertEndsWithCompletion(
      slowEvents,
      'Run completed with status: failed',
    );
    assert.match(
      String(completion.body.error?.message),
      /has been cancelled/,
      `failed completion must carry error.message about the cancellation:\n${dump([completion])}`,
    );
    const elapsed = completion.receivedAt - cancelStartedAt;
    assert.ok(elapsed < 5000, `cancel -> completion took ${elapsed} ms (limit 5000 ms)`);
    const after = await sseClient.getTask(slowTaskId);
    assert.equal(after.status, 'failed', 'a cancelled task must end as failed');
    return `cancel -> completion ${elapsed} ms`;
  });

  await check('retry', async () => {
    const result = await sseClient.retry(slowTaskId);
    assert.equal(result.id, slowTaskId, `retry result: ${JSON.stringify(result)}`);
    const lastSeen = slowEvents[slowEvents.length - 1].id;
    const events = await collect(
      sseClient.streamLogs({ taskId: slowTaskId, after: lastSeen }),
      { label: 'SSE streamLogs after retry' },
    );
    assertEventShapes(events, slowTaskId);
    for (const e of events) {
      assert.ok(e.id > lastSeen, `event id ${e.id} not after ${lastSeen}:\n${dump(events)}`);
    }
    const recovered = events.find(e => e.type === 'recovered');
    assert.ok(recovered, `no recovered event after retry:\n${dump(events)}`);
    assert.equal(typeof recovered.body.recoverStrategy, 'string');
    assert.ok(
      events.some(
        e => e.id > recovered.id && /^Starting up task with \d+ steps$/.test(e.body.message),
      ),
      `the retried run must log 'Starting up task with N steps':\n${dump(events)}`,
    );
    const completion = assertEndsWithCompletion(events);
    return `second run: ${completion.body.message}`;
  });

  // Dry run ------------------------------------------------------------------------------------
  if (!TEMPLATE_JSON) {
    console.log('ok - dryRun # SKIP SCAFFOLDER_TEMPLATE_JSON not set');
  } else {
    await check('dryRun', async () => {
      const template = JSON.parse(readFileSync(TEMPLATE_JSON, 'utf8'));
      const result = await sseClient.dryRun({
        template,
        values: { name: 'dry' },
        secrets: {},
        directoryContents: [],
      });
      assert.ok(Array.isArray(result.log), 'log must be an array');
      assert.ok(Array.isArray(result.directoryContents), 'directoryContents must be an array');
      assert.ok(isObject(result.output), 'output must be an object');
      assert.ok(Array.isArray(result.steps), 'steps must be an array');
      for (const entry of result.log) {
        assert.equal(
          typeof entry?.body?.message,
          'string',
          `log entry without body.message: ${JSON.stringify(entry)}`,
        );
      }
      const n = template.spec.steps.length;
      assert.equal(result.steps.length, n, 'dry-run steps must be the template steps');
      assert.equal(
        result.log[0]?.body.message,
        `Starting up task with ${n + 1} steps`,
        'dry-run adds the hidden extract step',
      );
      for (const f of result.directoryContents) {
        assert.equal(typeof f.path, 'string');
        assert.equal(typeof f.base64Content, 'string');
      }
      return `${result.log.length} log lines, ${result.directoryContents.length} files`;
    });
  }

  // Error shapes ---------------------------------------------------------------------------------
  await check('getTask of an unknown task -> ResponseError 404 NotFoundError', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    const err = await sseClient.getTask(missing).then(
      t => assert.fail(`expected a rejection, got ${JSON.stringify(t)}`),
      e => e,
    );
    assert.ok(err instanceof ResponseError, `expected ResponseError, got ${err?.stack ?? err}`);
    assert.equal(err.name, 'ResponseError');
    assert.equal(err.response.status, 404);
    assert.equal(err.statusCode, 404);
    assert.ok(
      err.response.headers.get('content-type')?.startsWith('application/json'),
      'error responses must be application/json (else the client ignores the body)',
    );
    assert.equal(err.body?.error?.name, 'NotFoundError', `body: ${JSON.stringify(err.body)}`);
    assert.equal(err.body.error.message, `No task with id '${missing}' found`);
    assert.equal(err.body.response?.statusCode, 404);
    assert.equal(err.cause?.name, 'NotFoundError');
  });

  await check('scaffold with invalid values -> 400 {errors}', async () => {
    const err = await sseClient
      .scaffold({ templateRef: TEMPLATE_REF, values: {} })
      .then(r => assert.fail(`expected a rejection, got ${JSON.stringify(r)}`), e => e);
    const body = parseScaffoldError(err, 400);
    assert.ok(Array.isArray(body.errors), `expected {errors: [...]}, got ${JSON.stringify(body)}`);
    assert.ok(body.errors.length > 0, 'errors must not be empty');
    for (const e of body.errors) {
      assert.equal(typeof e.message, 'string', `validation error: ${JSON.stringify(e)}`);
      assert.equal(typeof e.property, 'string', `validation error: ${JSON.stringify(e)}`);
    }
  });

  await check('scaffold of a missing template -> 404', async () => {
    const err = await sseClient
      .scaffold({
        templateRef: `template:default/conformance-missing-${Date.now()}`,
        values: { name: 'x' },
      })
      .then(r => assert.fail(`expected a rejection, got ${JSON.stringify(r)}`), e => e);
    const body = parseScaffoldError(err, 404);
    assert.equal(body.error?.name, 'NotFoundError', `body: ${JSON.stringify(body)}`);
  });

  await check('listTemplatingExtensions', async () => {
    const ext = await sseClient.listTemplatingExtensions();
    assert.ok(isObject(ext.filters), 'filters must be an object');
    assert.ok(isObject(ext.globals), 'globals must be an object');
    assert.ok('parseRepoUrl' in ext.filters, 'parseRepoUrl filter missing');
    return Object.keys(ext.filters).sort().join(', ');
  });

  console.log('# all checks passed');
  // Long-poll or keep-alive sockets may linger; do not wait for them.
  process.exit(0);
}

main().catch(fail);
