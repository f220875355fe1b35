// The trace explorer in a real browser: log in, search traces (a filter, the scatter's
// brush and its menu), open a result, fold and unfold subtrees, select spans by click, keyboard and a
// #span= link, find spans, open a 10 000-span trace, and use both pages without
// JavaScript. Every page is served with the dashboard's Content-Security-Policy and must
// raise no violation. Screenshots of the search and trace pages at 1280 and 390 px, light
// and dark; at 390 px nothing may scroll sideways. Run by
// services/e2e/tests/explorer_browser.rs against a stack holding the shop's traces.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_TRACE (the failing
// checkout), WEFT_ERROR_SPAN (its failing span), WEFT_DEEP_SPAN (a span at depth 3),
// WEFT_LARGE_TRACE (10 000 spans), WEFT_SCREENSHOTS, optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PHONE, WIDE, checkPolicy, launchChromium, logIn, noSidewaysScroll, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const traceId = required('WEFT_TRACE');
const errorSpan = required('WEFT_ERROR_SPAN');
const deepSpan = required('WEFT_DEEP_SPAN');
const largeTrace = required('WEFT_LARGE_TRACE');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];
// A download leaves the page as a request Chromium aborts: no broken load.
const notDownloads = { ignoreFailure: (request) => request.url().includes('/download') };

const visibleRows = (page) => page.locator('#wf-rows > .r:visible');
const row = (page, name) => page.locator('#wf-rows > .r').filter({ has: page.locator('.n a', { hasText: name }) }).first();
const shownDetail = (page) => page.locator('.detail.on');

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems, notDownloads);

  await step('log in', () => logIn(page, base, email, password));

  await step('open Traces from the navigation', async () => {
    const link = page.locator('header nav a').first();
    assert.equal((await link.innerText()).trim(), 'Traces', 'Traces leads the navigation');
    await link.click();
    await page.waitForURL(`${base}/traces`);
    assert.equal(await page.locator('header nav a[aria-current="page"]').innerText(), 'Traces');
    await page.getByRole('heading', { level: 1, name: 'Traces' }).waitFor();
    const results = await page.locator('.trace-list tbody tr').count();
    assert.ok(results >= 20, `the last hour holds the shop's traffic (${results} rows)`);
    assert.ok((await page.locator('svg.scatter circle').count()) >= 20, 'a point per trace');
    assert.ok((await page.locator('svg.scatter circle.err').count()) >= 1, 'failing traces are red');
    await checkPolicy(page);
  });

  await step('screenshots of the search page', async () => {
    await page.goto(`${base}/traces?lookback=15m`);
    await screenshotAll(page, screenshots, 'search');
  });

  await step('filter by service and errors with the form', async () => {
    await page.goto(`${base}/traces`);
    await page.getByLabel('Service').selectOption('payment');
    await page.getByLabel('Errors only').check();
    await page.getByRole('button', { name: 'Find traces' }).click();
    await page.waitForURL(/service=payment/);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('error'), 'true');
    const hrefs = await page.locator('.trace-list tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.href));
    assert.deepEqual(hrefs, [`/traces/${traceId}`], 'only the failing checkout has a failing payment span');
  });

  await step('brush a window on the scatter', async () => {
    await page.goto(`${base}/traces?lookback=15m`);
    const box = await page.locator('svg.scatter').boundingBox();
    await page.mouse.move(box.x + box.width * 0.3, box.y + 16);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.95, box.y + 110, { steps: 6 });
    await page.mouse.up();
    const menu = page.getByRole('group', { name: 'Selected region' });
    await menu.waitFor();
    const compare = new URL(await menu.getByRole('link', { name: 'What is different about it?' }).getAttribute('href'), base);
    assert.equal(compare.pathname, '/traces/difference');
    assert.equal(compare.searchParams.get('selection'), 'region');
    assert.ok(compare.searchParams.get('selected_start') && compare.searchParams.get('selected_max_duration'), compare.search);
    await menu.getByRole('link', { name: 'Zoom to it' }).click();
    await page.waitForURL(/lookback=custom/);
    const url = new URL(page.url());
    const start = Date.parse(url.searchParams.get('start'));
    const end = Date.parse(url.searchParams.get('end'));
    assert.ok(start < end, `${url.search}`);
    assert.ok(url.searchParams.get('min_trace_duration') && url.searchParams.get('max_trace_duration'), url.search);
    await page.getByRole('heading', { level: 1, name: 'Traces' }).waitFor();
    assert.equal(await page.locator('select[name="lookback"]').inputValue(), 'custom');
    assert.ok(await page.locator('input[name="start"]').inputValue(), 'the form shows the brushed range');
    await checkPolicy(page);
  });

  await step('click a result to open its trace', async () => {
    await page.goto(`${base}/traces?lookback=15m&sort=longest&error=true`);
    await page.locator(`tr[data-href="/traces/${traceId}"] td.services`).click();
    await page.waitForURL(`${base}/traces/${traceId}`);
    await page.getByRole('heading', { level: 1, name: /GET \/checkout/ }).waitFor();
    assert.equal(await visibleRows(page).count(), 8, 'every span is a row');
    const names = await page.locator('#wf-rows > .r .n a').allInnerTexts();
    assert.deepEqual(
      names.map((n) => n.replace(/^\S+\s/, '')),
      ['GET /checkout', 'POST /api/checkout', 'reserve items', 'UPDATE stock', 'charge card', 'POST /v1/charges', 'INSERT order_attempts', 'render error page'],
      'depth first, siblings by start time',
    );
    assert.equal(await page.locator(`#span-${errorSpan}.err`).count(), 1, 'the failing span is marked');
    await checkPolicy(page);
    await page.screenshot({ path: join(screenshots, 'trace-overview-1280-light.png'), fullPage: true });
  });

  await step('collapse and expand a subtree', async () => {
    const api = row(page, 'POST /api/checkout');
    await api.locator('.tw').click();
    assert.equal(await visibleRows(page).count(), 3, 'the API call folds its five descendants');
    assert.equal(await api.locator('.tw').getAttribute('aria-expanded'), 'false');
    assert.equal(await api.locator('.n').getAttribute('data-folded'), '5');
    assert.equal(await row(page, 'charge card').isVisible(), false);
    await api.locator('.tw').click();
    assert.equal(await visibleRows(page).count(), 8);
    await page.getByRole('button', { name: 'Collapse all' }).click();
    assert.equal(await visibleRows(page).count(), 1, 'only the root is left');
    await page.getByRole('button', { name: 'Expand all' }).click();
    assert.equal(await visibleRows(page).count(), 8);
  });

  await step('select a span and read its panel', async () => {
    await row(page, 'charge card').locator('.n a').click();
    await shownDetail(page).waitFor();
    assert.equal(new URL(page.url()).hash, `#span=${errorSpan}`);
    assert.equal(await shownDetail(page).locator('h2').innerText(), 'charge card');
    const exception = shownDetail(page).locator('.exception');
    assert.match(await exception.innerText(), /CardDeclinedError: card ending 4242 was declined: insufficient funds/);
    assert.match(await exception.locator('pre').innerText(), /at charge \(payment\/src\/card\.rs:88\)/);
    assert.match(await shownDetail(page).locator('.status-error').innerText(), /card declined/);
    const attributes = await shownDetail(page).locator('table.attrs').first().innerText();
    assert.match(attributes, /payment\.provider\s+stripe/);
    assert.match(await shownDetail(page).locator('.resource-slot').innerText(), /host\.name\s+payment-7f9c/, 'the resource is shown in the panel');
  });

  await step('screenshots of the trace page with a span selected', async () => {
    await screenshotAll(page, screenshots, 'trace', {
      fullPage: false,
      prepare: async () => {
        await page.locator(`#span-${errorSpan}`).scrollIntoViewIfNeeded();
      },
    });
    assert.equal(new URL(page.url()).hash, `#span=${errorSpan}`);
  });

  await step('move with the keyboard', async () => {
    const focused = () => page.evaluate(() => document.activeElement.closest('.r')?.id);
    const panelTitle = () => shownDetail(page).locator('h2').innerText();
    await row(page, 'charge card').locator('.n a').focus();
    await page.keyboard.press('ArrowDown');
    assert.equal(await panelTitle(), 'POST /v1/charges', 'the panel follows the cursor');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    assert.equal(await panelTitle(), 'UPDATE stock');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await panelTitle(), 'reserve items', 'left on a leaf goes to the parent');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await row(page, 'UPDATE stock').isVisible(), false, 'left folds');
    await page.keyboard.press('ArrowRight');
    assert.equal(await row(page, 'UPDATE stock').isVisible(), true, 'right unfolds');
    await page.keyboard.press('ArrowRight');
    assert.equal(await panelTitle(), 'UPDATE stock', 'right on an open parent goes to its first child');
    await page.keyboard.press('Escape');
    assert.equal(await shownDetail(page).count(), 0, 'escape closes the panel');
    assert.equal(new URL(page.url()).hash, '');
    assert.equal(await focused(), `span-${deepSpan}`, 'focus stays on the row');
    await page.keyboard.press('ArrowDown');
    assert.equal(await shownDetail(page).count(), 0, 'with the panel closed the cursor moves alone');
    await page.keyboard.press('Enter');
    assert.equal(await panelTitle(), 'charge card', 'enter opens the span under the cursor');
  });

  await step('find spans', async () => {
    await page.locator('#find').fill('postgresql');
    await page.waitForFunction(() => document.getElementById('find-count').textContent.includes('of 8'));
    assert.equal(await page.locator('#find-count').innerText(), '2 of 8 spans', 'attribute values are searched');
    await page.locator('#find').press('Enter');
    assert.equal(await shownDetail(page).locator('h2').innerText(), 'INSERT order_attempts');
    await page.locator('#find').fill('');
    await page.locator('#find').press('Escape');
  });

  await step('open a #span= link', async () => {
    const fresh = await openPage(context, problems, notDownloads);
    await fresh.goto(`${base}/traces/${traceId}#span=${deepSpan}`);
    await shownDetail(fresh).waitFor();
    assert.equal(await shownDetail(fresh).locator('h2').innerText(), 'UPDATE stock');
    assert.equal(await fresh.locator(`#span-${deepSpan}.sel`).count(), 1);
    assert.equal(await fresh.evaluate(() => document.activeElement.closest('.r')), null, 'a link does not steal focus');
    await checkPolicy(fresh);
    await fresh.close();
  });

  await step('download the trace as OTLP JSON', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download OTLP JSON' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `trace-${traceId}.json`);
    const file = join(screenshots, download.suggestedFilename());
    await download.saveAs(file);
    const { readFile } = await import('node:fs/promises');
    const otlp = JSON.parse(await readFile(file, 'utf8'));
    const spans = otlp.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
    assert.equal(spans.length, 8);
    assert.ok(spans.every((s) => s.traceId === traceId));
  });

  await step('a 10 000-span trace stays usable', async () => {
    const started = Date.now();
    await page.goto(`${base}/traces/${largeTrace}`, { waitUntil: 'load' });
    const loaded = Date.now() - started;
    const rows = page.locator('#wf-rows > .r');
    const shownRows = () => page.evaluate(() => [...document.querySelectorAll('#wf-rows > .r')].filter((r) => !r.hidden).length);
    assert.equal(await shownRows(), 10000);
    const timing = await page.evaluate(() => {
      const [nav] = performance.getEntriesByType('navigation');
      return { response: Math.round(nav.responseEnd), interactive: Math.round(nav.domInteractive), load: Math.round(nav.loadEventEnd) };
    });
    // Each action until the next frame has been drawn: what a user waits for.
    const timed = async (action) => {
      const t = Date.now();
      await action();
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve))));
      return Date.now() - t;
    };
    const collapse = await timed(() => page.click('#collapse-all'));
    assert.equal(await shownRows(), 1);
    const unfold = await timed(() => rows.first().locator('.tw').click());
    assert.equal(await shownRows(), 100, 'the root shows its 99 files');
    const expand = await timed(() => page.click('#expand-all'));
    assert.equal(await shownRows(), 10000);
    const select = await timed(() => rows.nth(1).locator('.n a').click());
    assert.equal(await shownDetail(page).locator('h2').innerText(), 'import file');
    const arrow = await timed(() => page.keyboard.press('ArrowDown'));
    assert.equal(await shownDetail(page).locator('h2').innerText(), 'INSERT row');
    const found = await timed(async () => {
      await page.locator('#find').fill('import file');
      await page.waitForFunction(() => document.getElementById('find-count').textContent !== '');
    });
    assert.equal(await page.locator('#find-count').innerText(), '99 of 10000 spans');
    console.log(
      `   10 000 spans: loaded in ${loaded} ms (response end ${timing.response} ms, DOM interactive ${timing.interactive} ms, load ${timing.load} ms); ` +
        `collapse all ${collapse} ms, unfold the root ${unfold} ms, expand all ${expand} ms, select ${select} ms, arrow down ${arrow} ms, find ${found} ms`,
    );
    await page.locator('#find').fill('');
    await page.locator('#find').press('Escape');
    await page.screenshot({ path: join(screenshots, 'trace-large-1280-light.png') });
    await page.setViewportSize(PHONE);
    await noSidewaysScroll(page);
    await page.screenshot({ path: join(screenshots, 'trace-large-390-light.png') });
    await page.setViewportSize(WIDE);
    await checkPolicy(page);
  });

  await step('empty and not-found pages', async () => {
    await page.goto(`${base}/traces?lookback=custom&start=2020-01-01T00:00&end=2020-01-01T01:00`);
    await page.getByRole('heading', { name: 'No traces match' }).waitFor();
    await page.goto(`${base}/traces/${'0'.repeat(31)}1`);
    await page.getByRole('heading', { level: 1, name: 'Trace not found' }).waitFor();
    await page.setViewportSize(PHONE);
    await noSidewaysScroll(page);
    await page.screenshot({ path: join(screenshots, 'trace-not-found-390-light.png'), fullPage: true });
    await page.setViewportSize(WIDE);
  });

  await context.close();
}

/** Both pages without JavaScript: the form searches, a row's link opens its detail. */
async function withoutJavaScript() {
  const context = await browser.newContext({ viewport: WIDE, javaScriptEnabled: false });
  const page = await openPage(context, problems, notDownloads);
  await step('without JavaScript: log in, search, open a span', async () => {
    await logIn(page, base, email, password);
    await page.goto(`${base}/traces`);
    await page.getByLabel('Min span duration').fill('300ms');
    await page.getByRole('button', { name: 'Find traces' }).click();
    await page.waitForURL(/min_duration=300ms/);
    assert.ok((await page.locator('.trace-list tbody tr').count()) >= 1);
    await page.locator(`.trace-list a[href="/traces/${traceId}"]`).click();
    await page.waitForURL(`${base}/traces/${traceId}`);
    assert.equal(await page.locator('#toolbar').isVisible(), false, 'the toolbar needs JavaScript');
    await row(page, 'charge card').locator('.n a').click();
    assert.equal(new URL(page.url()).hash, `#detail-${errorSpan}`);
    const detail = page.locator(`#detail-${errorSpan}`);
    assert.ok(await detail.isVisible(), 'the :target detail shows');
    assert.match(await detail.locator('.exception').innerText(), /CardDeclinedError/);
    await page.setViewportSize(PHONE);
    await noSidewaysScroll(page);
    await page.screenshot({ path: join(screenshots, 'trace-nojs-390-light.png') });
  });
  await context.close();
}

await runFlow('explorer', browser, screenshots, problems, async () => {
  await flow();
  await withoutJavaScript();
});
