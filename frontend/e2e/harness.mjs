// What every browser flow shares: the environment it is given, Debian's Chromium
// launched headless (never a browser a tool downloads), steps that report their time,
// logging in, and the checks that a page kept to the dashboard's Content-Security-Policy
// and that a failed load is a real one; the page that records problems, the screenshots
// at both widths and schemes, and the run that reports them.

import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

/** The value of environment variable `name`, which the Rust test that runs the flow sets. */
export function required(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set`);
  return value;
}

/** Debian's Chromium (`WEFT_CHROMIUM` overrides the path), headless. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.WEFT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Chromium fetches the favicon after a page has loaded and abandons the fetch when the
// flow moves on first: that is no broken resource.
export function abortedFavicon(request) {
  return request.failure()?.errorText === 'net::ERR_ABORTED' && new URL(request.url()).pathname === '/static/favicon.svg';
}

/** Fails when the page recorded a Content-Security-Policy violation (see each flow's init script). */
export async function checkPolicy(page) {
  const violations = await page.evaluate(() => window.cspViolations);
  assert.deepEqual(violations, [], `${page.url()} breaks the Content-Security-Policy`);
}

/** Runs one named step of a flow and prints how long it took. */
export async function step(name, body) {
  console.log(`-> ${name}`);
  const started = Date.now();
  await body();
  console.log(`   ok (${Date.now() - started} ms)`);
}

/** Logs in to the dashboard at `base` through its form and waits for the home page. */
export async function logIn(page, base, email, password) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${base}/`);
}

/**
 * Fails when the page is wider than the window, naming the outermost elements that reach
 * past it; `what` names the page in the message (its address unless given).
 */
export async function noSidewaysScroll(page, what = page.url()) {
  const { scrollWidth, innerWidth, wide } = await page.evaluate(() => {
    const { scrollWidth } = document.documentElement;
    const edge = window.innerWidth + 1;
    // Only when it fails: the outermost elements reaching past the right edge.
    const wide =
      scrollWidth <= window.innerWidth
        ? []
        : [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > edge && e.parentElement.getBoundingClientRect().right <= edge)
            .slice(0, 5)
            .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} (${Math.round(e.getBoundingClientRect().right)} px)`);
    return { scrollWidth, innerWidth: window.innerWidth, wide };
  });
  assert.ok(scrollWidth <= innerWidth, `${what} scrolls sideways at ${innerWidth} px: ${scrollWidth} px wide; ${wide.join(', ')}`);
}

export const WIDE = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };
const PAGE_TIMEOUT_MS = 15_000;

/**
 * Records into `problems` what `page` failed to load (but an abandoned favicon fetch and
 * the requests `ignoreFailure` accepts) and its sub-resources answered with an error
 * status; documents may answer 4xx on purpose.
 */
export function watchLoads(page, problems, ignoreFailure = () => false) {
  page.on('requestfailed', (request) => {
    if (!abortedFavicon(request) && !ignoreFailure(request)) problems.push(`${request.url()}: ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.request().resourceType() !== 'document' && response.status() >= 400) {
      problems.push(`${response.url()}: HTTP ${response.status()}`);
    }
  });
}

/**
 * A page of `context` which records violations of the Content-Security-Policy the
 * dashboard sends (for `checkPolicy`) and, into `problems`, script errors and what
 * `watchLoads` records. Options: `ignoreFailure(request)`, failed requests that are no
 * problem (a download, say); `timeout`, how long an action may wait (15 s).
 */
export async function openPage(context, problems, { ignoreFailure, timeout = PAGE_TIMEOUT_MS } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.violatedDirective}: ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`);
    });
  });
  page.on('pageerror', (error) => problems.push(`${page.url()}: script error ${error.message}`));
  watchLoads(page, problems, ignoreFailure);
  return page;
}

/**
 * Screenshots `<dir>/<name>-<1280|390>-<light|dark>.png` of the page as it is; at 390 px
 * the page must not scroll sideways. `prepare(size, scheme)` runs before each one.
 */
export async function screenshotAll(page, dir, name, { fullPage = true, prepare = async () => {} } = {}) {
  for (const [size, viewport] of [['1280', WIDE], ['390', PHONE]]) {
    await page.setViewportSize(viewport);
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await prepare(size, scheme);
      if (size === '390') await noSidewaysScroll(page);
      const file = `${dir}/${name}-${size}-${scheme}.png`;
      await page.screenshot({ path: file, fullPage });
      console.log(`   screenshot ${file}`);
    }
  }
  await page.setViewportSize(WIDE);
  await page.emulateMedia({ colorScheme: 'light' });
}

/**
 * Runs `body` (the flow) and exits the process with its outcome: on failure, a
 * screenshot of every open page lands in `screenshots`; `problems` must stay empty.
 */
export async function runFlow(name, browser, screenshots, problems, body) {
  const started = Date.now();
  let failed = false;
  try {
    await body();
    assert.deepEqual(problems, [], 'no script errors and every resource loads');
    console.log(`${name} flow passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    failed = true;
    console.error(`${name} flow failed:`);
    console.error(error);
    // Numbered across contexts, so that a second context's pages do not overwrite the first's.
    const open = browser.contexts().flatMap((context) => context.pages());
    for (const [i, page] of open.entries()) {
      const file = `${screenshots}/failure-${i}.png`;
      await page
        .screenshot({ path: file, fullPage: true })
        .then(() => console.error(`   screenshot ${file} of ${page.url()}`))
        .catch((e) => console.error(`   no failure screenshot: ${e.message}`));
    }
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}
