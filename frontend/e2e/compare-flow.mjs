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
import { join } from 'node:path';
import { abortedFavicon, checkPolicy, launchChromium, noSidewaysScroll, required, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const traceA = required('WEFT_TRACE_A');
const traceB = required('WEFT_TRACE_B');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

// The policy the dashboard sends on every page.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";
const PAGE_TIMEOUT_MS = 15_000;
const WIDE = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

const browser = await launchChromium();

const problems = [];

/** A page whose documents carry the CSP, and which records violations and broken loads. */
async function openPage(context) {
  await context.route('**/*', async (route) => {
    if (route.request().resourceType() !== 'document') return route.continue();
    // Redirects go back to the browser, so that it follows them as it would.
    const response = await route.fetch({ maxRedirects: 0 });
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': CSP } });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.violatedDirective}: ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`);
    });
  });
  page.on('pageerror', (error) => problems.push(`${page.url()}: script error ${error.message}`));
  page.on('requestfailed', (request) => {
    if (!request.url().includes('/download') && !abortedFavicon(request)) problems.push(`${request.url()}: ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.request().resourceType() !== 'document' && response.status() >= 400) {
      problems.push(`${response.url()}: HTTP ${response.status()}`);
    }
  });
  return page;
}

/** Screenshots of the page as it is, at both widths and in both colour schemes. */
async function screenshotAll(page, name, { fullPage = true, prepare = async () => {} } = {}) {
  for (const [size, viewport] of [['1280', WIDE], ['390', PHONE]]) {
    await page.setViewportSize(viewport);
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await prepare(size);
      if (size === '390') await noSidewaysScroll(page);
      const file = join(screenshots, `${name}-${size}-${scheme}.png`);
      await page.screenshot({ path: file, fullPage });
      console.log(`   screenshot ${file}`);
    }
  }
  await page.setViewportSize(WIDE);
  await page.emulateMedia({ colorScheme: 'light' });
}

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
  const page = await openPage(context);

  await step('log in', async () => {
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${base}/`);
  });

  await step('open trace A and compare it with a pasted trace B', async () => {
    await page.goto(`${base}/traces/${traceA}`);
    const form = page.getByRole('form', { name: 'Compare with another trace' });
    await form.getByLabel('Trace ID to compare with').fill(traceB);
    await form.getByRole('button', { name: 'Compare' }).click();
    await page.waitForURL(`${base}/traces/compare?a=${traceA}&b=${traceB}`);
    await checkComparison(page, traceA, traceB);
    await checkPolicy(page);
    await screenshotAll(page, 'compare');
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
    await screenshotAll(page, 'compare-pick');
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
    await screenshotAll(page, 'compare-reversed');
  });
  await context.close();
}

const started = Date.now();
let failed = false;
try {
  await flow();
  assert.deepEqual(problems, [], 'no script errors and every resource loads');
  console.log(`compare flow passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  failed = true;
  console.error('compare flow failed:');
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
