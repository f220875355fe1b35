// The dashboard journey of a new user in a real browser: sign up, copy the ingest key and
// the OTEL_* lines from the set-up page into an OpenTelemetry SDK app, read its trace back
// with a read key made on the keys page, log out and in again, and revoke the ingest key so
// that ingest refuses it. Run by services/e2e/tests/browser.rs against a stack.
//
// Environment: WEFT_QUERY_URL (the dashboard), WEFT_OTEL_CLIENT (the otel-env-client
// binary), WEFT_SCREENSHOTS (a directory for one full-page screenshot per page) and
// optionally WEFT_CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium, required, runFlow, step, watchLoads } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const otelClient = required('WEFT_OTEL_CLIENT');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const suffix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const email = `browser-${suffix}@example.com`;
const password = `correct horse ${suffix}`;
const organisation = `Browser Flow ${suffix}`;

// How long a page element may take to appear.
const PAGE_TIMEOUT_MS = 10_000;

const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.setDefaultTimeout(PAGE_TIMEOUT_MS);

// Every stylesheet or other subresource must load; documents may answer 4xx on purpose.
const brokenResources = [];
watchLoads(page, brokenResources);

let shot = 0;
async function screenshot(name, of = page) {
  shot += 1;
  const file = join(screenshots, `${String(shot).padStart(2, '0')}-${name}.png`);
  const styled = await of.evaluate(() =>
    [...document.styleSheets].some(
      (sheet) => sheet.href?.endsWith('/static/weft.css') && sheet.cssRules.length > 0,
    ),
  );
  assert.ok(styled, `${of.url()}: the stylesheet /static/weft.css is not applied`);
  await of.screenshot({ path: file, fullPage: true });
  console.log(`   screenshot ${file}`);
}

async function text(locator) {
  await locator.waitFor({ state: 'visible' });
  return (await locator.innerText()).trim();
}

async function heading(name) {
  return text(page.getByRole('heading', { level: 1, name, exact: true }));
}

/** Runs the SDK app with only these OTEL_* variables; resolves to its exit code and output. */
function runOtelClient(otelEnv) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')),
  );
  Object.assign(env, otelEnv, {
    OTEL_SERVICE_NAME: 'browser-flow',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  });
  return new Promise((resolve) => {
    execFile(otelClient, [], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout: stdout.trim(), stderr: stderr.trim(), signal: error?.signal });
    });
  });
}

async function sleep(ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

let ingestKey;
let otelEnv;
let traceId;
let readKey;
let invitationLink;

async function flow() {
  await step('sign up', async () => {
    await page.goto(`${base}/signup`);
    await heading('Create your organisation');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Organisation').fill(organisation);
    await page.getByLabel('Password').fill(password);
    await screenshot('signup');
    await page.getByRole('button', { name: 'Create account' }).click();
    await heading('Send traces to Weft');
    ingestKey = await text(page.locator('#new-key'));
    assert.match(ingestKey, /^weft_[0-9a-f]{40}$/, 'the set-up page shows the new ingest key');
    assert.equal(
      await text(page.locator('header .org')),
      organisation,
      'the header names the new organisation',
    );
    await screenshot('setup');
  });

  await step('copy the key and the OTEL_* lines from the set-up page', async () => {
    const snippet = await text(
      page.locator('pre', { hasText: 'export OTEL_EXPORTER_OTLP_ENDPOINT=' }),
    );
    const exported = Object.fromEntries(
      [...snippet.matchAll(/^export (OTEL_[A-Z_]+)=(.*)$/gm)].map(([, name, value]) => [
        name,
        value.trim(),
      ]),
    );
    assert.ok(exported.OTEL_EXPORTER_OTLP_ENDPOINT, `no endpoint line in:\n${snippet}`);
    assert.match(exported.OTEL_EXPORTER_OTLP_ENDPOINT, /^https?:\/\/[^/]+$/);
    assert.equal(
      exported.OTEL_EXPORTER_OTLP_HEADERS,
      `x-api-key=${ingestKey}`,
      'the headers line carries the new ingest key',
    );
    otelEnv = {
      OTEL_EXPORTER_OTLP_ENDPOINT: exported.OTEL_EXPORTER_OTLP_ENDPOINT,
      OTEL_EXPORTER_OTLP_HEADERS: exported.OTEL_EXPORTER_OTLP_HEADERS,
    };
    console.log(`   endpoint ${otelEnv.OTEL_EXPORTER_OTLP_ENDPOINT}`);
  });

  await step('send a trace with the OpenTelemetry SDK configured by those lines', async () => {
    const run = await runOtelClient(otelEnv);
    assert.equal(run.code, 0, `otel-env-client failed (${run.code}):\n${run.stderr}`);
    assert.match(run.stdout, /^[0-9a-f]{32}$/, 'otel-env-client prints the trace id');
    traceId = run.stdout;
    console.log(`   trace ${traceId}`);
  });

  await step('create a read key', async () => {
    await page.goto(`${base}/keys`);
    await heading('API keys');
    await page.getByLabel('Name').fill('browser read');
    await page.getByLabel('Scope').selectOption('read');
    await page.getByRole('button', { name: 'Create key' }).click();
    await text(page.getByRole('heading', { name: 'New read key' }));
    readKey = await text(page.locator('#new-key'));
    assert.match(readKey, /^weft_[0-9a-f]{40}$/, 'the keys page shows the new read key');
    assert.notEqual(readKey, ingestKey);
    await screenshot('keys-read-key');
  });

  await step('read the trace through the query API', async () => {
    const url = `${base}/api/v1/traces/${traceId}`;
    const deadline = Date.now() + 20_000;
    let last = 'no request yet';
    let trace;
    while (!trace) {
      const response = await fetch(url, { headers: { 'x-api-key': readKey } });
      if (response.status === 200) {
        trace = await response.json();
      } else {
        last = `HTTP ${response.status}: ${await response.text()}`;
        assert.ok(Date.now() < deadline, `trace ${traceId} not readable within 20 s (${last})`);
        await sleep(250);
      }
    }
    assert.equal(trace.trace_id, traceId);
    assert.equal(trace.root_name, 'GET /env', 'the root span is the SDK app’s request');
    assert.equal(trace.root_service, 'browser-flow');
    const root = trace.spans.find((span) => span.depth === 0);
    assert.equal(root?.name, 'GET /env', `root span of ${JSON.stringify(trace.spans)}`);
  });

  await step('log out', async () => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.waitForURL(`${base}/login?notice=logged-out`);
    await heading('Log in');
    assert.equal(await text(page.getByRole('status')), 'You are logged out.');
    assert.equal(await page.getByRole('button', { name: 'Log out', exact: true }).count(), 0);
    await screenshot('logged-out');
  });

  await step('log in with a wrong password', async () => {
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(`${password}-wrong`);
    await page.getByRole('button', { name: 'Log in' }).click();
    assert.equal(await text(page.getByRole('alert')), 'Wrong email or password.');
    await screenshot('wrong-password');
  });

  await step('log in', async () => {
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${base}/`);
    await heading('Send traces to Weft');
    assert.equal(await text(page.locator('header .org')), organisation);
    assert.equal(await page.locator('#new-key').count(), 0, 'the key is shown only once');
    await screenshot('logged-in');
  });

  await step('usage page', async () => {
    await page.locator('header nav').getByRole('link', { name: 'Usage' }).click();
    await page.waitForURL(`${base}/usage`);
    await heading('Usage');
    await screenshot('usage');
  });

  await step('invite a teammate as viewer', async () => {
    await page.locator('header nav').getByRole('link', { name: 'Members' }).click();
    await page.waitForURL(`${base}/members`);
    await heading('Members');
    await page.getByLabel('Email').fill(`teammate-${suffix}@example.com`);
    await page.locator('select[name="role"]').last().selectOption('viewer');
    await page.getByRole('button', { name: 'Create invitation' }).click();
    invitationLink = await text(page.locator('#invitation-link'));
    assert.match(invitationLink, new RegExp(`^${base}/invite/[0-9a-f]{64}$`));
    await screenshot('members-invited');
  });

  await step('the teammate accepts the invitation in their own browser', async () => {
    const teammate = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await teammate.goto(invitationLink);
    await teammate.getByRole('heading', { level: 1, name: `Join ${organisation}` }).waitFor();
    await screenshot('invitation', teammate);
    await teammate.getByLabel('Choose a password').fill(password);
    await teammate.getByRole('button', { name: 'Accept invitation' }).click();
    // A viewer cannot send data: they land on the traces, not on a page of placeholders.
    await teammate.waitForURL(`${base}/traces`);
    assert.equal((await teammate.locator('header .role').innerText()).trim(), 'viewer');
    assert.equal(await teammate.getByText('YOUR_INGEST_KEY').count(), 0);
    assert.equal(await teammate.locator('header nav').getByRole('link', { name: 'Send data' }).count(), 0);
    await screenshot('viewer-lands-on-traces', teammate);
    await teammate.close();
  });

  await step('revoke the ingest key', async () => {
    await page.locator('header nav').getByRole('link', { name: 'API keys' }).click();
    await page.waitForURL(`${base}/keys`);
    const row = page.getByRole('row').filter({ hasText: 'default ingest' });
    assert.equal(await text(row.getByRole('cell').nth(5)), 'active');
    await row.getByRole('button', { name: 'Revoke' }).click();
    // Nothing is revoked before the confirmation page is answered.
    await page.waitForURL(/\/keys\/[0-9a-f-]+\/revoke\??$/);
    await heading('Revoke the key \u201cdefault ingest\u201d?');
    await screenshot('key-revoke-confirm');
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await page.waitForURL(`${base}/keys`);
    await row.getByText('revoked', { exact: true }).waitFor();
    assert.equal(await row.getByRole('button', { name: 'Revoke' }).count(), 0);
    const readRow = page.getByRole('row').filter({ hasText: 'browser read' });
    assert.equal(await text(readRow.getByRole('cell').nth(5)), 'active');
    await screenshot('keys-revoked');
  });

  await step('ingest refuses the revoked key', async () => {
    const deadline = Date.now() + 10_000;
    let run = await runOtelClient(otelEnv);
    while (run.code === 0) {
      assert.ok(
        Date.now() < deadline,
        `the SDK still exports with the revoked key 10 s after revocation (trace ${run.stdout})`,
      );
      await sleep(500);
      run = await runOtelClient(otelEnv);
    }
    const error = run.stderr.split('\n')[0];
    console.log(`   otel-env-client exited ${run.code}: ${error}`);
    assert.match(error, /\b401\b/, 'the SDK export fails because ingest refuses the key');
    const response = await fetch(`${otelEnv.OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': ingestKey },
      body: JSON.stringify({ resourceSpans: [] }),
    });
    assert.equal(response.status, 401, `OTLP/HTTP with the revoked key: ${await response.text()}`);
  });
}

await runFlow('signup', browser, screenshots, brokenResources, flow);
