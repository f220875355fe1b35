// What every browser flow shares: the environment it is given, Debian's Chromium
// launched headless (never a browser a tool downloads), steps that report their time,
// and the checks that a page kept to the dashboard's Content-Security-Policy and that a
// failed load is a real one.

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

/** Fails when the page is wider than the window, naming the outermost elements that reach past it. */
export async function noSidewaysScroll(page) {
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
  assert.ok(scrollWidth <= innerWidth, `${page.url()} scrolls sideways at ${innerWidth} px: ${scrollWidth} px wide; ${wide.join(', ')}`);
}
