// The logs page in a real browser: a member opens Logs from the navigation, reads the
// histogram and the newest lines, opens a line to all its attributes, narrows the search
// to errors with the form (the URL holds the whole query), pages to older lines, and
// follows a line's trace link to the trace opened at its span. Every page must work
// under the dashboard's Content-Security-Policy, and at 390 px nothing may scroll
// sideways. Screenshots at 1280 and 390 px, light and dark. Run by
// services/e2e/tests/logs_browser.rs against a stack holding the lines it sent.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_SCREENSHOTS, WEFT_TRACE_ID,
// WEFT_SPAN_ID, optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { WIDE, checkPolicy, launchChromium, logIn, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const screenshots = required('WEFT_SCREENSHOTS');
const traceId = required('WEFT_TRACE_ID');
const spanId = required('WEFT_SPAN_ID');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);

  await step('log in', () => logIn(page, base, email, password));

  await step('open Logs from the navigation', async () => {
    await page.locator('header nav a', { hasText: 'Logs' }).click();
    await page.waitForURL(`${base}/logs`);
    assert.equal(await page.locator('header nav a[aria-current="page"]').innerText(), 'Logs');
    await page.getByRole('heading', { level: 1, name: 'Logs' }).waitFor();
    assert.ok((await page.locator('svg.histogram rect').count()) > 5, 'the histogram has bars');
    assert.equal(await page.locator('ol.lines > li').count(), 100, 'a page of 100 lines');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'logs');
  });

  await step('a line opens to all its attributes', async () => {
    const line = page.locator('details.line', { hasText: 'card declined' }).first();
    await line.locator('summary').click();
    const detail = line.locator('.line-detail');
    await detail.waitFor();
    const text = await detail.innerText();
    assert.match(text, /customer/);
    assert.match(text, /O'Brien/);
    assert.match(text, new RegExp(traceId));
    await screenshotAll(page, screenshots, 'logs-line-open');
  });

  await step('narrow to errors; the URL holds the query', async () => {
    await page.getByLabel('Severity').selectOption('error');
    await page.getByLabel('Text contains').fill('declined');
    await page.getByRole('button', { name: 'Find lines' }).click();
    await page.waitForURL(/severity=error/);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('q'), 'declined');
    const count = await page.locator('ol.lines > li').count();
    assert.ok(count >= 1, 'error lines found');
    for (const sev of await page.locator('details.line .sev').allInnerTexts()) {
      assert.match(sev, /ERROR/i);
    }
    // The same URL in a new tab shows the same lines.
    const again = await openPage(context, problems);
    await again.goto(page.url());
    assert.equal(await again.locator('ol.lines > li').count(), count);
    await again.close();
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'logs-errors');
  });

  await step('older lines page on', async () => {
    await page.goto(`${base}/logs?lookback=1h`);
    await page.getByRole('link', { name: 'Older lines' }).click();
    await page.waitForURL(/cursor=/);
    assert.ok((await page.locator('ol.lines > li').count()) > 0);
    assert.match(await page.locator('.log-lines .card-head h2').innerText(), /older page/);
  });

  await step('a trace link opens the trace at its span', async () => {
    await page.goto(`${base}/logs?trace_id=${traceId}`);
    const link = page.locator('details.line summary a.trace-link').first();
    assert.equal(await link.getAttribute('href'), `/traces/${traceId}#span=${spanId}`);
    await link.click();
    await page.waitForURL(`${base}/traces/${traceId}#span=${spanId}`);
    await page.locator('.waterfall').first().waitFor();
  });

  await step('the trace page lists its lines, and each span its own', async () => {
    const all = page.locator('section.trace-logs ol.span-logs li');
    assert.equal(await all.count(), 1);
    assert.match(await all.first().innerText(), /card declined/);
    const own = page.locator(`#detail-${spanId} ol.span-logs li`);
    assert.equal(await own.count(), 1, 'the span panel lists the line logged under it');
    assert.match(await own.first().textContent(), /card declined/);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'trace-logs');
  });
  await context.close();
}

await runFlow('logs', browser, screenshots, problems, flow);
