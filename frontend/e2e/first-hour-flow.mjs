// A new user's first hour in a real browser, at 1280 px and at 390 px: sign up, name the
// service, pick a language and copy its snippet, send the first span with the variables
// the page shows, and watch "waiting for your first span" turn into a link to the trace
// without reloading. Then every page of the navigation, at both widths in light and dark
// mode, must not scroll sideways (at 390 px: document.documentElement.scrollWidth <=
// innerWidth), and unknown paths answer the HTML 404 page. Run by
// services/e2e/tests/first_hour_browser.rs against a stack.
//
// Environment: WEFT_QUERY_URL (the dashboard), WEFT_OTEL_CLIENT (the otel-env-client
// binary, an SDK app configured only by OTEL_* variables), WEFT_SCREENSHOTS and
// optionally WEFT_CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium, logIn, noSidewaysScroll, openPage, required, runFlow, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const otelClient = required('WEFT_OTEL_CLIENT');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const PAGE_TIMEOUT_MS = 10_000;
// The waiting panel asks every 2 s; the sampler stores a trace within a few seconds.
const FIRST_SPAN_TIMEOUT_MS = 30_000;
const LANGUAGES = ['shell', 'python', 'node', 'go', 'java', 'rust'];
const WIDTHS = [1280, 390];

const browser = await launchChromium();

const brokenResources = [];
let shot = 0;

async function newPage(width) {
  const context = await browser.newContext({ viewport: { width, height: width > 600 ? 800 : 844 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  // The pages keep the policy the dashboard sends.
  return openPage(context, brokenResources, { timeout: PAGE_TIMEOUT_MS });
}

async function screenshot(page, name) {
  shot += 1;
  const file = join(screenshots, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`   screenshot ${file}`);
}

/** Screenshots in light and dark mode, back in light afterwards. */
async function screenshots2(page, name) {
  const width = page.viewportSize().width;
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await screenshot(page, `${name}-${width}-${scheme}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

/** Runs the SDK app with these variables only; resolves to its exit code and output. */
function runOtelClient(otelEnv) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')));
  Object.assign(env, otelEnv);
  return new Promise((resolve) => {
    execFile(otelClient, [], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

async function journey(width) {
  const page = await newPage(width);
  const suffix = `${width}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const service = `first-span-${width}`;
  const email = `first-hour-${suffix}@example.com`;
  const password = `correct horse ${suffix}`;
  let traceId;

  await step(`${width} px: sign up`, async () => {
    await page.goto(`${base}/signup`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Organisation').fill(`First Hour ${width}`);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Send traces to Weft' }).waitFor();
    await page.getByText('Waiting for your first span…').waitFor();
    const key = (await page.locator('#new-key').innerText()).trim();
    for (const language of LANGUAGES) {
      assert.equal(await page.locator(`[data-snippet="${language}"]`).count(), 1, `one ${language} snippet`);
    }
    const shell = await page.locator('[data-snippet="shell"]').textContent();
    assert.ok(shell.includes(`x-api-key=${key}`), `the shell snippet carries the new key:\n${shell}`);
    await noSidewaysScroll(page, `${width} px set-up page`);
    await screenshots2(page, 'setup');
  });

  await step(`${width} px: name the service; every snippet follows`, async () => {
    await page.getByLabel('Service name').fill(service);
    for (const language of LANGUAGES) {
      // Node.js's tracing.js reads the variables: the name is in its run command.
      const which = language === 'node' ? '[data-run="node"]' : `[data-snippet="${language}"]`;
      const text = await page.locator(which).textContent();
      assert.ok(text.includes(service), `${language} snippet names ${service}:\n${text}`);
      assert.ok(!text.includes('my-service'), `${language} snippet still names my-service`);
    }
    assert.ok(page.url().endsWith(`/?service=${service}`), `the URL keeps the name: ${page.url()}`);
  });

  await step(`${width} px: the Python tab, and its copy button copies the snippet`, async () => {
    await page.getByRole('tab', { name: 'Python' }).click();
    const snippet = page.locator('[data-snippet="python"]');
    await snippet.waitFor({ state: 'visible' });
    assert.equal(await page.locator('[data-snippet="shell"]').isVisible(), false, 'other tabs are hidden');
    const panel = page.locator('#panel-python');
    await panel.locator('.snippet-block').filter({ has: snippet }).getByRole('button', { name: /^Copy/ }).click();
    await panel.getByRole('button', { name: 'Copied' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, await snippet.textContent(), 'the copy button copies exactly the snippet');
    assert.ok(copied.includes('OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf'), copied);
    assert.ok(copied.includes('OTEL_METRICS_EXPORTER=none'), copied);
    await noSidewaysScroll(page, `${width} px Python tab`);
    await screenshots2(page, 'setup-python');
  });

  await step(`${width} px: send the first span with the variables the page shows`, async () => {
    await page.getByRole('tab', { name: 'Any SDK' }).click();
    const shell = await page.locator('[data-snippet="shell"]').textContent();
    const otelEnv = Object.fromEntries([...shell.matchAll(/^export (OTEL_[A-Z_]+)=(.*)$/gm)].map(([, n, v]) => [n, v.trim()]));
    assert.equal(otelEnv.OTEL_SERVICE_NAME, service);
    const run = await runOtelClient(otelEnv);
    assert.equal(run.code, 0, `otel-env-client failed (${run.code}):\n${run.stderr}`);
    traceId = run.stdout;
    assert.match(traceId, /^[0-9a-f]{32}$/);
  });

  await step(`${width} px: the waiting panel turns into a link to the trace without a reload`, async () => {
    const link = page.locator('#newest-trace');
    await link.waitFor({ state: 'visible', timeout: FIRST_SPAN_TIMEOUT_MS });
    assert.equal(await link.getAttribute('href'), `/traces/${traceId}`);
    assert.ok((await link.innerText()).includes(service));
    await noSidewaysScroll(page, `${width} px set-up page with the link`);
    await screenshots2(page, 'first-span');
    await link.click();
    await page.waitForURL(`${base}/traces/${traceId}`);
    await noSidewaysScroll(page, `${width} px trace page`);
  });

  await step(`${width} px: no page of the navigation scrolls sideways`, async () => {
    await page.goto(`${base}/`);
    const links = await page.locator('header nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.ok(links.length >= 10, `the navigation: ${links}`);
    for (const href of links) {
      await page.goto(`${base}${href}`);
      const current = await page.locator('header nav a[aria-current="page"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      assert.deepEqual(current, [href], `${href} marks itself, and only itself, as the current page`);
      await noSidewaysScroll(page, `${width} px ${href}`);
      const name = href === '/' ? 'send-data' : href.slice(1).replaceAll('/', '-');
      await screenshots2(page, `page-${name}`);
    }
  });

  await step(`${width} px: an unknown path is the HTML 404 page`, async () => {
    const response = await page.goto(`${base}/no/such/page`);
    assert.equal(response.status(), 404);
    assert.match(response.headers()['content-type'], /^text\/html/);
    await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
    assert.equal(await page.locator('header .role').count(), 1, 'signed in, the 404 page keeps the header');
    await noSidewaysScroll(page, `${width} px 404 page`);
    await screenshots2(page, 'not-found');
  });

  await page.context().close();
  if (width === WIDTHS[0]) {
    await withoutJavaScript(email, password, service, traceId);
  }
}

/** The same set-up page without JavaScript: every language shown, the name a GET form. */
async function withoutJavaScript(email, password, service, traceId) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, javaScriptEnabled: false });
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  await step('without JavaScript: every snippet is shown and the service name is a form', async () => {
    await logIn(page, base, email, password);
    for (const language of LANGUAGES) {
      assert.ok(await page.locator(`[data-snippet="${language}"]`).isVisible(), `${language} is shown`);
    }
    assert.equal(await page.getByRole('button', { name: 'Copy' }).count(), 0, 'no copy buttons without script');
    assert.equal(await page.locator('.tabs').isVisible(), false, 'no tabs without script');
    const link = page.locator('#newest-trace');
    assert.equal(await link.getAttribute('href'), `/traces/${traceId}`, 'the page links the trace that arrived');
    await page.getByLabel('Service name').fill(`${service}-nojs`);
    await page.getByRole('button', { name: 'Update snippets' }).click();
    await page.waitForURL(`${base}/?service=${service}-nojs`);
    const python = await page.locator('[data-snippet="python"]').textContent();
    assert.ok(python.includes(`OTEL_SERVICE_NAME=${service}-nojs \\`), python);
    await screenshots2(page, 'setup-without-javascript');
  });
  await context.close();
}

/** A member of two organisations: the header's switcher at 390 and 1280 px, and switching. */
async function organisationSwitcher() {
  const suffix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const owner = await newPage(1280);
  const member = await newPage(390);
  const email = `switcher-${suffix}@example.com`;
  const password = `correct horse ${suffix}`;
  async function signUp(page, who, organisation) {
    await page.goto(`${base}/signup`);
    await page.getByLabel('Email').fill(who);
    await page.getByLabel('Organisation').fill(organisation);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Send traces to Weft' }).waitFor();
  }
  await step('390 px: a member of two organisations switches between them', async () => {
    await signUp(owner, `owner-${suffix}@example.com`, 'Acme Switchboard');
    await signUp(member, email, 'Beta Works');
    await owner.goto(`${base}/members`);
    await owner.getByLabel('Email').fill(email);
    await owner.locator('select[name="role"]').last().selectOption('member');
    await owner.getByRole('button', { name: 'Create invitation' }).click();
    const invitation = (await owner.locator('#invitation-link').innerText()).trim();
    await member.goto(invitation);
    await member.getByLabel('Your password').fill(password);
    await member.getByRole('button', { name: 'Accept invitation' }).click();
    await member.waitForURL(`${base}/`);
    const switcher = member.getByRole('combobox', { name: 'Organisation' });
    assert.equal(await switcher.locator('option:checked').innerText(), 'Acme Switchboard');
    for (const path of ['/', '/traces', '/members']) {
      await member.goto(`${base}${path}`);
      await noSidewaysScroll(member, `390 px ${path} with the organisation switcher`);
    }
    await screenshots2(member, 'switcher');
    await member.setViewportSize({ width: 1280, height: 800 });
    await screenshots2(member, 'switcher');
    // With JavaScript, choosing is switching: the button is not needed, nor shown.
    assert.equal(await member.getByRole('button', { name: 'Switch' }).isVisible(), false);
    await switcher.selectOption({ label: 'Beta Works' });
    await member.waitForURL(`${base}/`);
    assert.equal(await member.getByRole('combobox', { name: 'Organisation' }).locator('option:checked').innerText(), 'Beta Works');
    assert.equal((await member.locator('header .role').innerText()).trim(), 'owner');
  });
  await step('without JavaScript: the Switch button sends the switcher', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, javaScriptEnabled: false });
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    await logIn(page, base, email, password);
    const switcher = page.getByRole('combobox', { name: 'Organisation' });
    const other = (await switcher.locator('option:checked').innerText()) === 'Beta Works' ? 'Acme Switchboard' : 'Beta Works';
    await switcher.selectOption({ label: other });
    await page.getByRole('button', { name: 'Switch' }).click();
    await page.waitForURL(`${base}/`);
    assert.equal(await page.getByRole('combobox', { name: 'Organisation' }).locator('option:checked').innerText(), other);
    assert.equal((await page.locator('header .role').innerText()).trim(), other === 'Beta Works' ? 'owner' : 'member');
    await page.goto(`${base}/members`);
    await noSidewaysScroll(page, '390 px without JavaScript, with the organisation switcher');
    await screenshots2(page, 'switcher-without-javascript');
    await context.close();
  });
  await owner.context().close();
  await member.context().close();
}

await runFlow('first-hour', browser, screenshots, brokenResources, async () => {
  for (const width of WIDTHS) {
    await journey(width);
  }
  await organisationSwitcher();
  await step('the favicon is served and linked', async () => {
    const response = await fetch(`${base}/static/favicon.svg`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/svg+xml');
    assert.match(response.headers.get('cache-control'), /max-age=31536000/);
  });
});
