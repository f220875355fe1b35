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
import { PHONE, WIDE, checkPolicy, launchChromium, logIn, noSidewaysScroll, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

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

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);

  await step('log in', () => logIn(page, base, email, password));

  await step('open Sampling from the navigation', async () => {
    await page.locator('header nav a', { hasText: 'Sampling' }).click();
    await page.waitForURL(`${base}/sampling`);
    assert.equal(await page.locator('header nav a[aria-current="page"]').innerText(), 'Sampling');
    await page.getByRole('heading', { level: 1, name: 'Sampling' }).waitFor();
    assert.equal(await page.locator('table.rules tbody tr').count(), 3, 'the default has three rules');
    assert.match(await page.locator('table.rules').innerText(), /status = "error"/);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'sampling-default');
  });

  await step('a bad policy names the field and keeps the text', async () => {
    const bad = POLICY.replace('"probability": 0.05', '"probability": 1.5');
    await page.getByLabel('Policy as JSON').fill(bad);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#policy-error').waitFor();
    assert.match(await page.locator('#policy-error').innerText(), /rules\[3\]\.probability: must be between 0 and 1/);
    assert.equal(await page.getByLabel('Policy as JSON').inputValue(), bad.replace(/\r\n/g, '\n'));
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'sampling-error');
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
    await screenshotAll(page, screenshots, 'sampling-dry-run');
  });

  await step('save, then reset behind the confirmation', async () => {
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved. The samplers apply it').waitFor();
    assert.equal(await page.locator('table.rules tbody tr').count(), 4);
    assert.match(await page.locator('table.rules').innerText(), /root\.http\.route = "\/healthz"/);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'sampling-saved');
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

await runFlow('sampling', browser, screenshots, problems, flow);
