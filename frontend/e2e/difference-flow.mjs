// "What is different" in a real browser: log in, drag a box around the slow traces on
// the search page's scatter, ask what is different about them and find the planted
// attribute ranked first with its bars; follow it to the search narrowed to it; open the
// comparison of the failing traces from the search page's link. Screenshots of the page
// at 1280 and 390 px, light and dark; at 390 px nothing may scroll sideways. Run by
// services/e2e/tests/explorer_search.rs against a stack holding load with
// `app.region=eu-slow` on the slow traces only.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_SLOW_TRACES (how many
// carry the planted value), WEFT_SCREENSHOTS, optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { WIDE, checkPolicy, launchChromium, logIn, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const slowTraces = Number(required('WEFT_SLOW_TRACES'));
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];
// A download leaves the page as a request Chromium aborts: no broken load.
const notDownloads = { ignoreFailure: (request) => request.url().includes('/download') };

/** The ranked values of the page, as `key=value`. */
async function ranked(page) {
  return page.locator('.diff-list li .attr').evaluateAll((links) =>
    links.map((a) => `${a.querySelector('.k').textContent}=${a.querySelector('.v').textContent}`),
  );
}

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems, notDownloads);

  await step('log in', () => logIn(page, base, email, password));

  await step('select the slow traces on the scatter and ask what is different', async () => {
    await page.goto(`${base}/traces?lookback=15m&limit=1000`);
    const svg = page.locator('svg.scatter');
    assert.equal(await svg.getAttribute('data-scale'), 'log', 'slow outliers: a logarithmic axis');
    const box = await svg.boundingBox();
    const top = Number(await svg.getAttribute('data-top'));
    const plot = Number(await svg.getAttribute('data-plot'));
    const yMin = Number(await svg.getAttribute('data-ymin'));
    const yMax = Number(await svg.getAttribute('data-ymax'));
    // The pixel row of a duration on the log axis.
    const yOf = (ns) => box.y + top + (1 - (Math.log10(ns) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plot;
    await page.mouse.move(box.x + 4, yOf(yMax * 0.9));
    await page.mouse.down();
    await page.mouse.move(box.x + box.width - 4, yOf(800e6), { steps: 8 });
    await page.mouse.up();
    const menu = page.getByRole('group', { name: 'Selected region' });
    await menu.waitFor();
    await checkPolicy(page);
    await menu.getByRole('link', { name: 'What is different about it?' }).click();
    await page.waitForURL(/\/traces\/difference\?.*selection=region/);
    await page.getByRole('heading', { level: 1, name: /What is different about traces started/ }).waitFor();
    assert.match(await page.locator('.difference h2').innerText(), new RegExp(`^${slowTraces} selected traces`));
    const values = await ranked(page);
    assert.equal(values[0], 'app.region=eu-slow', `the planted value is first: ${values.join(', ')}`);
    const first = page.locator('.diff-list li').first();
    assert.equal(await first.locator('.bar.sel b').innerText(), '100%');
    assert.equal(await first.locator('.bar.base b').innerText(), '0%');
    assert.match(await page.locator('.hint').last().innerText(), /user\.id/);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'difference');
  });

  await step('follow the planted value to its traces', async () => {
    await page.locator('.diff-list li .attr').first().click();
    await page.waitForURL(/\/traces\?.*attr=app.region%3Deu-slow/);
    await page.getByRole('heading', { level: 1, name: 'Traces' }).waitFor();
    assert.equal(await page.locator('.trace-list tbody tr').count(), slowTraces, 'exactly the slow traces carry it');
    assert.equal(await page.locator('input[name="attr"]').first().inputValue(), 'app.region=eu-slow');
  });

  await step('what is different about the failing traces, from the search page', async () => {
    await page.goto(`${base}/traces?lookback=15m&limit=100`);
    await page.getByRole('link', { name: 'the traces with errors' }).click();
    await page.waitForURL(/selection=errors/);
    const values = await ranked(page);
    assert.equal(values[0], 'payment.provider=flaky', values.join(', '));
    // The form changes the selection and keeps the search.
    await page.locator('select[name="selection"]').selectOption('slow');
    await page.getByRole('textbox', { name: 'Threshold' }).fill('1s');
    await page.getByRole('button', { name: 'Compare' }).click();
    await page.waitForURL(/threshold=1s/);
    assert.equal(new URL(page.url()).searchParams.get('limit'), '100', 'the search is kept');
    assert.equal((await ranked(page))[0], 'app.region=eu-slow');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'difference-slow');
  });
  await context.close();
}

await runFlow('difference', browser, screenshots, problems, flow);
