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
import { join } from 'node:path';
import { abortedFavicon, checkPolicy, launchChromium, noSidewaysScroll, required, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const slowTraces = Number(required('WEFT_SLOW_TRACES'));
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

/** The ranked values of the page, as `key=value`. */
async function ranked(page) {
  return page.locator('.diff-list li .attr').evaluateAll((links) =>
    links.map((a) => `${a.querySelector('.k').textContent}=${a.querySelector('.v').textContent}`),
  );
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
    await screenshotAll(page, 'difference');
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
    await screenshotAll(page, 'difference-slow');
  });
  await context.close();
}

const started = Date.now();
let failed = false;
try {
  await flow();
  assert.deepEqual(problems, [], 'no script errors and every resource loads');
  console.log(`difference flow passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  failed = true;
  console.error('difference flow failed:');
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
