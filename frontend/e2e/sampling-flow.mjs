// The sampling page in a real browser: an admin opens Sampling from the navigation, reads
// the default policy, gets a validation error naming the field, dry-runs a policy with a
// drop rule for health checks, saves it and resets it behind the confirmation. Every page
// must work under the dashboard's Content-Security-Policy, and at 390 px nothing may
// scroll sideways. Screenshots of the page at 1280 and 390 px, light and dark. Run by
// services/e2e/tests/sampling_browser.rs against a stack holding some traces.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_SCREENSHOTS, optionally
// WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { abortedFavicon, checkPolicy, launchChromium, noSidewaysScroll, required, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const PAGE_TIMEOUT_MS = 15_000;
const WIDE = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

const POLICY = `{
  "rules": [
    {"name": "drop health checks", "action": "drop",
     "conditions": [{"field": "root.http.route", "op": "=", "value": "/healthz"}]},
    {"name": "keep errors",
     "conditions": [{"field": "status", "op": "=", "value": "error"}]},
    {"name": "keep slow checkouts", "scope": "span",
     "conditions": [{"field": "service.name", "op": "=", "value": "raw-client"},
                    {"field": "duration_ms", "op": ">", "value": 800}]},
    {"name": "keep 5% of the rest", "probability": 0.05}
  ],
  "max_kept_spans_per_second": 2000
}`;

const browser = await launchChromium();

const problems = [];

async function openPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.violatedDirective}: ${event.blockedURI || 'inline'}`);
    });
  });
  page.on('pageerror', (error) => problems.push(`${page.url()}: script error ${error.message}`));
  page.on('requestfailed', (request) => abortedFavicon(request) || problems.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.request().resourceType() !== 'document' && response.status() >= 400) {
      problems.push(`${response.url()}: HTTP ${response.status()}`);
    }
  });
  return page;
}

async function screenshotAll(page, name) {
  for (const [size, viewport] of [['1280', WIDE], ['390', PHONE]]) {
    await page.setViewportSize(viewport);
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      if (size === '390') await noSidewaysScroll(page);
      const file = join(screenshots, `${name}-${size}-${scheme}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`   screenshot ${file}`);
    }
  }
  await page.setViewportSize(WIDE);
  await page.emulateMedia({ colorScheme: 'light' });
}

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context);

  await step('log in', async () => {
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${base}/`);
  });

  await step('open Sampling from the navigation', async () => {
    await page.locator('header nav a', { hasText: 'Sampling' }).click();
    await page.waitForURL(`${base}/sampling`);
    assert.equal(await page.locator('header nav a[aria-current="page"]').innerText(), 'Sampling');
    await page.getByRole('heading', { level: 1, name: 'Sampling' }).waitFor();
    assert.equal(await page.locator('table.rules tbody tr').count(), 3, 'the default has three rules');
    assert.match(await page.locator('table.rules').innerText(), /status = "error"/);
    await checkPolicy(page);
    await screenshotAll(page, 'sampling-default');
  });

  await step('a bad policy names the field and keeps the text', async () => {
    const bad = POLICY.replace('"probability": 0.05', '"probability": 1.5');
    await page.getByLabel('Policy as JSON').fill(bad);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#policy-error').waitFor();
    assert.match(await page.locator('#policy-error').innerText(), /rules\[3\]\.probability: must be between 0 and 1/);
    assert.equal(await page.getByLabel('Policy as JSON').inputValue(), bad.replace(/\r\n/g, '\n'));
    await checkPolicy(page);
    await screenshotAll(page, 'sampling-error');
  });

  await step('a dry run shows what each rule would keep, without saving', async () => {
    await page.getByLabel('Policy as JSON').fill(POLICY);
    await page.getByRole('button', { name: 'Dry run' }).click();
    await page.locator('#dry-run').waitFor();
    assert.equal(await page.locator('#dry-run table tbody tr').count(), 5, 'four rules and the traces no rule matches');
    assert.match(await page.locator('#keep-ratio').innerText(), /%$/);
    assert.equal(await page.locator('.badge.neutral').innerText(), 'default', 'nothing saved');
    // The dry run comes with the editor as it was.
    await page.locator('details', { hasText: 'Example' }).locator('summary').click();
    await checkPolicy(page);
    await screenshotAll(page, 'sampling-dry-run');
  });

  await step('save, then reset behind the confirmation', async () => {
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved. The samplers apply it').waitFor();
    assert.equal(await page.locator('table.rules tbody tr').count(), 4);
    assert.match(await page.locator('table.rules').innerText(), /root\.http\.route = "\/healthz"/);
    await checkPolicy(page);
    await screenshotAll(page, 'sampling-saved');
    await page.getByText('Reset to default…').click();
    await page.locator('details.reset[open]').waitFor();
    await page.setViewportSize(PHONE);
    await noSidewaysScroll(page);
    await page.screenshot({ path: join(screenshots, 'sampling-reset-confirm-390-light.png'), fullPage: true });
    await page.setViewportSize(WIDE);
    await page.getByRole('button', { name: 'Reset to default' }).click();
    await page.getByText('Back to the default policy.').waitFor();
    assert.equal(await page.locator('table.rules tbody tr').count(), 3);
  });
  await context.close();
}

const started = Date.now();
let failed = false;
try {
  await flow();
  assert.deepEqual(problems, [], 'no script errors and every resource loads');
  console.log(`sampling flow passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  failed = true;
  console.error('sampling flow failed:');
  console.error(error);
  for (const context of browser.contexts()) {
    for (const [i, open] of context.pages().entries()) {
      const file = join(screenshots, `failure-${i}.png`);
      await open
        .screenshot({ path: file, fullPage: true })
        .then(() => console.error(`   screenshot ${file} of ${open.url()}`))
        .catch((e) => console.error(`   no failure screenshot: ${e.message}`));
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
