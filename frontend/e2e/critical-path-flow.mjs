// The critical path of a trace larger than one page, in a real browser: on the second
// page of a 10 003-span trace the late call and its callee carry the path's band over
// exactly their stretches on it (measured against the timeline), the band stands out
// from the bar in both colour schemes, the toolbar's switch hides and shows it, and the
// first page marks the root's own time on it. Screenshots of the second page at 1280 and
// 390 px, light and dark, and of the first page's top. Run by
// services/e2e/tests/explorer_pages.rs (`the_critical_path_of_a_trace_larger_than_a_page`).
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_TRACE, WEFT_ROOT_SPAN (on
// the first page), WEFT_CALL_SPAN (notify, 500–950 ms of 1 s), WEFT_CALLEE_SPAN (send,
// 600–900 ms), WEFT_SCREENSHOTS, optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PHONE, WIDE, checkPolicy, launchChromium, logIn, noSidewaysScroll, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const traceId = required('WEFT_TRACE');
const rootSpan = required('WEFT_ROOT_SPAN');
const callSpan = required('WEFT_CALL_SPAN');
const calleeSpan = required('WEFT_CALLEE_SPAN');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];

/**
 * The critical-path bands of a span's row as shares of its timeline (0–1, start and
 * end), read from where the browser drew them, with whether each is visible.
 */
async function bands(page, spanId) {
  return page.locator(`#span-${spanId} .t`).evaluate((timeline) => {
    const box = timeline.getBoundingClientRect();
    return [...timeline.querySelectorAll('.cp')].map((band) => {
      const r = band.getBoundingClientRect();
      return {
        from: (r.left - box.left) / box.width,
        to: (r.right - box.left) / box.width,
        visible: r.width > 0 && r.height > 0 && getComputedStyle(band).display !== 'none',
      };
    });
  });
}

/** Asserts the bands sit on `expected` ([from, to] shares), within a pixel or so. */
function assertBands(shown, expected, what) {
  assert.equal(shown.length, expected.length, `${what}: ${JSON.stringify(shown)}`);
  for (const [i, [from, to]] of expected.entries()) {
    assert.ok(shown[i].visible, `${what}: band ${i} is drawn`);
    assert.ok(Math.abs(shown[i].from - from) < 0.01 && Math.abs(shown[i].to - to) < 0.01, `${what}: band ${i} ${JSON.stringify(shown[i])}, expected ${from}–${to}`);
  }
}

/** The band's colour against its bar's: the path must not blend into the span it marks. */
async function contrast(page, spanId) {
  return page.locator(`#span-${spanId} .t`).evaluate((timeline) => {
    const rgb = (element) => getComputedStyle(element).backgroundColor.match(/[\d.]+/g).slice(0, 3).map(Number);
    const luminance = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return Math.abs(luminance(rgb(timeline.querySelector('.cp'))) - luminance(rgb(timeline.querySelector('.bar'))));
  });
}

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);

  await step('log in', () => logIn(page, base, email, password));

  await step('the second page marks the path of its spans', async () => {
    await page.goto(`${base}/traces/${traceId}?offset=10000`);
    await page.getByText('Spans 10001–10003 of 10003').waitFor();
    assert.equal(await page.locator('#wf-rows > .r').count(), 3);
    assertBands(await bands(page, callSpan), [[0.9, 0.95], [0.5, 0.6]], 'notify, before and after its call');
    assertBands(await bands(page, calleeSpan), [[0.6, 0.9]], 'send, whole');
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      const difference = await contrast(page, callSpan);
      assert.ok(difference > 60, `the band stands out from the bar in ${scheme} mode (luminance apart by ${difference.toFixed(0)})`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await checkPolicy(page);
  });

  await step('the switch hides and shows the path', async () => {
    const toggle = page.getByLabel('Critical path');
    assert.ok(await toggle.isChecked(), 'shown by default');
    await toggle.uncheck();
    assert.ok((await bands(page, callSpan)).every((band) => !band.visible), 'hidden');
    await toggle.check();
    assert.ok((await bands(page, callSpan)).every((band) => band.visible), 'shown again');
  });

  await step('screenshots of the second page', async () => {
    await screenshotAll(page, screenshots, 'critical-path-page-2');
  });

  await step('the first page marks the root on the path', async () => {
    await page.getByRole('link', { name: '← Previous spans' }).click();
    await page.waitForURL(`${base}/traces/${traceId}?offset=0`);
    assert.equal(await page.locator('#wf-rows > .r').count(), 10000);
    assertBands(await bands(page, rootSpan), [[0.95, 1], [0.3, 0.5]], 'the root, after notify and before it');
    await page.screenshot({ path: join(screenshots, 'critical-path-page-1-1280-light.png') });
    await page.setViewportSize(PHONE);
    await noSidewaysScroll(page);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(screenshots, 'critical-path-page-1-390-dark.png') });
    await checkPolicy(page);
  });

  await context.close();
}

await runFlow('critical path', browser, screenshots, problems, flow);
