// Comparing two traces in a real browser: log in, open trace A, paste trace B into
// "Compare with…", read the merged call tree (only in A, only in B, slower, the same),
// fold and unfold a subtree, hide the unchanged calls, follow a side's link to its span;
// then tick both traces in the search results and compare them from there. Screenshots
// of the comparison at 1280 and 390 px, light and dark; at 390 px nothing may scroll
// sideways. Run by services/e2e/tests/trace_compare.rs with its two checkouts.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_TRACE_A, WEFT_TRACE_B,
// WEFT_SCREENSHOTS, optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { WIDE, checkPolicy, launchChromium, logIn, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const traceA = required('WEFT_TRACE_A');
const traceB = required('WEFT_TRACE_B');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];
// A download leaves the page as a request Chromium aborts: no broken load.
const notDownloads = { ignoreFailure: (request) => request.url().includes('/download') };

/** The rows of the merged tree as `service operation: change`, visible ones only. */
async function tree(page) {
  return page.locator('#cmp-rows .cr').evaluateAll((rows) =>
    rows
      .filter((row) => row.checkVisibility())
      .map((row) => `${row.querySelector('.n b').textContent} ${row.querySelector('.op').textContent}: ${row.dataset.change}`),
  );
}

const EXPECTED = [
  'frontend GET /checkout: slower',
  'checkout POST /checkout: slower',
  'auth verify token: only_a',
  'payment charge-card: slower',
  'fraud score order: only_b',
  'db SELECT orders: same',
];

/** The tree's rows and what each says, as a reader sees them. */
async function checkComparison(page, a, b) {
  await page.getByRole('heading', { level: 1, name: 'Compare traces' }).waitFor();
  assert.deepEqual(await tree(page), EXPECTED);
  const row = (operation) => page.locator('#cmp-rows .cr').filter({ hasText: operation });
  assert.match(await row('verify token').innerText(), /only in A[\s\S]*not in B[\s\S]*\u2212\s?20ms/i);
  assert.match(await row('score order').innerText(), /only in B[\s\S]*not in A[\s\S]*\+100ms/i);
  assert.match(await row('charge-card').innerText(), /slower[\s\S]*120ms[\s\S]*520ms[\s\S]*\+400ms/i);
  assert.match(await row('SELECT orders').innerText(), /±0/);
  // The colours tell the changes apart: four different tints on the rows (with the
  // pointer off them, since a hovered row is highlighted).
  await page.mouse.move(0, 0);
  const tints = await page.locator('#cmp-rows .cr').evaluateAll((rows) => rows.map((r) => getComputedStyle(r).backgroundColor));
  assert.equal(new Set(tints).size, 4, `slower, only in A, only in B and same differ: ${tints.join(' | ')}`);
  assert.equal(await page.locator('.trace-side.a .trace-id').innerText(), a);
  assert.equal(await page.locator('.trace-side.b .trace-id').innerText(), b);
}

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems, notDownloads);

  await step('log in', () => logIn(page, base, email, password));

  await step('open trace A and compare it with a pasted trace B', async () => {
    await page.goto(`${base}/traces/${traceA}`);
    const form = page.getByRole('form', { name: 'Compare with another trace' });
    await form.getByLabel('Trace ID to compare with').fill(traceB);
    await form.getByRole('button', { name: 'Compare' }).click();
    await page.waitForURL(`${base}/traces/compare?a=${traceA}&b=${traceB}`);
    await checkComparison(page, traceA, traceB);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'compare');
  });

  await step('fold and unfold a subtree, hide the unchanged calls', async () => {
    const charge = page.locator('#cmp-rows summary').filter({ hasText: 'charge-card' }).first();
    await charge.locator('.n').click();
    assert.ok(!(await tree(page)).includes('fraud score order: only_b'), 'the fraud check folds under the charge');
    assert.match(await charge.innerText(), /1 below/);
    await charge.locator('.n').click();
    assert.deepEqual(await tree(page), EXPECTED);
    await page.getByRole('button', { name: 'Collapse all' }).click();
    assert.deepEqual(await tree(page), ['frontend GET /checkout: slower']);
    await page.getByRole('button', { name: 'Expand all' }).click();
    await page.getByLabel('Only changed calls').check();
    assert.deepEqual(await tree(page), EXPECTED.filter((line) => !line.endsWith(': same')));
    await page.getByLabel('Only changed calls').uncheck();
    assert.deepEqual(await tree(page), EXPECTED);
  });

  await step("follow B's side of the charge to its span", async () => {
    await page.locator('#cmp-rows .cr').filter({ hasText: 'charge-card' }).locator('.side.b a').click();
    await page.waitForURL(new RegExp(`/traces/${traceB}#span=`));
    await page.locator('.panel .detail:visible h2', { hasText: 'charge-card' }).waitFor();
  });

  await step('pick B among the traces of the same operation', async () => {
    await page.goto(`${base}/traces/${traceA}`);
    await page.getByRole('link', { name: 'or pick a trace of the same operation' }).click();
    await page.waitForURL(/\/traces\/compare\?a=/);
    const rows = page.locator('.compare-candidates tbody tr');
    assert.equal(await rows.count(), 1, 'B is the only other checkout');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'compare-pick');
    await rows.first().getByRole('link', { name: 'Compare' }).click();
    await checkComparison(page, traceA, traceB);
  });

  await step('tick both traces in the search results and compare them', async () => {
    await page.goto(`${base}/traces?lookback=15m`);
    const button = page.getByRole('button', { name: 'Compare selected' });
    assert.ok(await button.isDisabled(), 'nothing ticked yet');
    const boxes = page.locator('input[form="compare-selected"]');
    assert.equal(await boxes.count(), 2);
    // Newest first: B is the first row; ticking B then A compares B with A.
    await boxes.nth(0).check();
    assert.ok(await button.isDisabled(), 'one is not enough');
    await boxes.nth(1).check();
    assert.equal(page.url(), `${base}/traces?lookback=15m`, 'ticking does not open the trace');
    await button.click();
    await page.waitForURL(`${base}/traces/compare?a=${traceB}&b=${traceA}`);
    const reversed = await tree(page);
    assert.deepEqual(reversed.slice(0, 2), ['frontend GET /checkout: faster', 'checkout POST /checkout: faster']);
    assert.ok(reversed.includes('auth verify token: only_b'), reversed.join(', '));
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'compare-reversed');
  });
  await context.close();
}

await runFlow('compare', browser, screenshots, problems, flow);
