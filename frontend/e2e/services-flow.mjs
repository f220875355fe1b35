// The services pages and the service map in a real browser: log in, open Services from
// the navigation, sort the table, open a service, follow its "Slowest traces" and
// "Recent errors" links into the search, change the time range, open the map and a
// service from one of its boxes; then a second organisation's map of 50 services. Every
// page is served with the dashboard's Content-Security-Policy and must raise no
// violation. Screenshots of /services, a service page and /map at 1280 and 390 px,
// light and dark; at 390 px the page never scrolls sideways (the map scrolls in its own
// box). Run by services/e2e/tests/explorer_browser.rs.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD (the shop), WEFT_MESH_EMAIL (the
// organisation of 50 services, same password), WEFT_SERVICE (a service of the shop with
// errors and callers), WEFT_SCREENSHOTS, optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PHONE, WIDE, checkPolicy, launchChromium, logIn, noSidewaysScroll, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const meshEmail = required('WEFT_MESH_EMAIL');
const password = required('WEFT_PASSWORD');
const service = required('WEFT_SERVICE');
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];
// The map as a phone would load it (it scrolls its box into place on load): reloaded at
// each width, before the first of its two screenshots.
const reloadEachWidth = (page) => async (size, scheme) => {
  if (scheme === 'light') await page.reload();
};

const serviceRows = (page) => page.locator('table.red-table.services tbody tr');
const names = (page) => page.locator('table.red-table.services tbody td.name .svc').allInnerTexts();

async function shop() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);
  await step('log in', () => logIn(page, base, email, password));

  await step('open Services from the navigation', async () => {
    await page.locator('header nav a', { hasText: 'Services' }).click();
    await page.waitForURL(`${base}/services`);
    assert.equal(await page.locator('header nav a[aria-current="page"]').innerText(), 'Services');
    await page.getByRole('heading', { level: 1, name: 'Services' }).waitFor();
    const shown = await names(page);
    assert.deepEqual(shown, [...shown].sort(), 'by name at first');
    assert.ok(shown.includes(service), `${service} is listed: ${shown}`);
    assert.ok((await page.locator('svg.spark').count()) >= 3 * shown.length, 'three sparklines a row');
    await checkPolicy(page);
  });

  await step('sort by p95 from the header, then the other way', async () => {
    await page.locator('th a', { hasText: 'p95' }).click();
    await page.waitForURL(/sort=p95&dir=desc/);
    const p95 = () => page.locator('table.services tbody td.p95 data').evaluateAll((cells) => cells.map((c) => Number(c.value || -1)));
    const down = await p95();
    assert.deepEqual(down, [...down].sort((a, b) => b - a), 'slowest first');
    await page.locator('th a', { hasText: 'p95' }).click();
    await page.waitForURL(/sort=p95&dir=asc/);
    const up = await p95();
    assert.deepEqual(up, [...up].sort((a, b) => a - b));
    assert.match(await page.locator('th[aria-sort="ascending"]').innerText(), /^p95$/i);
  });

  await step('change the time range, keeping the sort', async () => {
    await page.locator('form.range select[name="lookback"]').selectOption('6h');
    await page.waitForURL(/lookback=6h/);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('sort'), 'p95', 'the sort survives');
    assert.match(await page.locator('form.range .window').innerText(), /UTC$/);
    await page.goto(`${base}/services`);
  });

  await step('screenshots of the services page', async () => {
    await screenshotAll(page, screenshots, 'services');
  });

  await step(`open ${service} from its row`, async () => {
    await serviceRows(page).filter({ has: page.locator('.svc', { hasText: service }) }).locator('td.p99').click();
    await page.waitForURL(new RegExp(`/services/${service}\\?lookback=1h`));
    await page.getByRole('heading', { level: 1, name: service }).waitFor();
    assert.equal(await page.locator('svg.plot').count(), 2, 'latency and throughput charts');
    assert.ok((await page.locator('svg.plot path.line.p99').getAttribute('d')).startsWith('M'), 'a p99 line');
    assert.ok((await page.locator('svg.plot rect.bar.requests').count()) >= 1, 'request bars');
    assert.ok((await page.locator('.chart .x-axis span').count()) >= 3, 'time ticks');
    assert.ok((await page.locator('.chart .y-axis span').count()) >= 3, 'value ticks');
    assert.ok((await page.locator('table.operations tbody tr').count()) >= 1, 'operations');
    await checkPolicy(page);
  });

  await step('screenshots of the service page', async () => {
    await screenshotAll(page, screenshots, 'service');
  });

  await step('hover a step of the throughput chart', async () => {
    const plot = page.locator('section[aria-label="Throughput"] svg.plot');
    const bar = page.locator('section[aria-label="Throughput"] rect.bar.requests').last();
    const box = await bar.boundingBox();
    await page.mouse.move(box.x + box.width / 2, (await plot.boundingBox()).y + 40);
    const tip = page.locator('section[aria-label="Throughput"] .chart-tip');
    await tip.waitFor();
    assert.match(await tip.innerText(), /UTC\n\d+ requests? \(/, 'the step\'s numbers');
    await page.screenshot({ path: join(screenshots, 'service-hover-1280-light.png') });
    await page.mouse.move(0, 0);
    assert.equal(await tip.isVisible(), false);
  });

  await step('its slowest traces and its recent errors', async () => {
    await page.getByRole('link', { name: 'Slowest traces' }).click();
    await page.waitForURL(/\/traces\?/);
    let url = new URL(page.url());
    assert.equal(url.searchParams.get('service'), service);
    assert.equal(url.searchParams.get('sort'), 'longest');
    assert.equal(await page.locator('select[name="sort"]').inputValue(), 'longest');
    assert.ok((await page.locator('.trace-list tbody tr').count()) >= 1);
    await page.goBack();
    await page.getByRole('link', { name: 'Recent errors' }).click();
    await page.waitForURL(/error=true/);
    url = new URL(page.url());
    assert.equal(url.searchParams.get('service'), service);
    assert.ok(await page.getByLabel('Errors only').isChecked());
    assert.ok((await page.locator('.trace-list tbody tr.has-errors').count()) >= 1, 'failing traces are found');
  });

  await step('open the map and a service from a box', async () => {
    await page.locator('header nav a', { hasText: 'Map' }).click();
    await page.waitForURL(`${base}/map`);
    assert.equal(await page.locator('header nav a[aria-current="page"]').innerText(), 'Map');
    const boxes = await page.locator('svg.service-map a.node').count();
    assert.ok(boxes >= 5, `${boxes} services`);
    assert.ok((await page.locator('svg.service-map path.edge').count()) >= 4, 'calls');
    assert.ok((await page.locator('svg.service-map .label text.p95').count()) >= 4, 'labelled calls');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'map', { prepare: reloadEachWidth(page) });
    await page.locator(`svg.service-map a.node[data-service="${service}"]`).click();
    await page.waitForURL(new RegExp(`/services/${service}\\?`));
  });

  await step('an unknown service', async () => {
    await page.goto(`${base}/services/no-such-service`);
    await page.getByRole('heading', { name: 'No spans from no-such-service in this range' }).waitFor();
    await page.setViewportSize(PHONE);
    await noSidewaysScroll(page);
    await page.screenshot({ path: join(screenshots, 'service-unknown-390-light.png'), fullPage: true });
    await page.setViewportSize(WIDE);
  });
  await context.close();
}

async function mesh() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);
  await step('a map of 50 services', async () => {
    await logIn(page, base, meshEmail, password);
    await page.goto(`${base}/map`);
    assert.equal(await page.locator('svg.service-map a.node').count(), 50);
    // No two boxes overlap on screen.
    const boxes = await page.locator('svg.service-map rect.box').evaluateAll((rects) => rects.map((r) => r.getBoundingClientRect()).map((b) => [b.left, b.top, b.right, b.bottom]));
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i], boxes[j]];
        assert.ok(a[2] <= b[0] || b[2] <= a[0] || a[3] <= b[1] || b[3] <= a[1], `boxes ${i} and ${j} overlap`);
      }
    }
    // The map scrolls inside its box; the page does not scroll sideways.
    const scroll = page.locator('.map-scroll');
    assert.ok(await scroll.evaluate((e) => e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight), 'a large map scrolls in its box');
    // It opens with the first service nobody calls in view.
    assert.ok(await page.locator('a.node[data-service="gateway-00"] rect.box').isVisible());
    const inView = await scroll.evaluate((box) => {
      const first = box.querySelector('a.node[data-service="gateway-00"] rect').getBoundingClientRect();
      const frame = box.getBoundingClientRect();
      return first.top >= frame.top && first.bottom <= frame.bottom;
    });
    assert.ok(inView, 'gateway-00 is inside the box as it opens');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'map-50', { fullPage: false, prepare: reloadEachWidth(page) });
    await page.setViewportSize(WIDE);
    await page.locator('.map-scroll').screenshot({ path: join(screenshots, 'map-50-whole-box-1280-light.png') });
    await page.goto(`${base}/services`);
    assert.equal(await serviceRows(page).count(), 50);
    await page.screenshot({ path: join(screenshots, 'services-50-1280-light.png'), fullPage: false });
  });
  await context.close();
}

/** The pages without JavaScript: the range form applies with its button, links work. */
async function withoutJavaScript() {
  const context = await browser.newContext({ viewport: PHONE, javaScriptEnabled: false });
  const page = await openPage(context, problems);
  await step('without JavaScript: the range, a service, the map', async () => {
    await logIn(page, base, email, password);
    await page.goto(`${base}/services?sort=rate&dir=desc`);
    await page.locator('form.range select[name="lookback"]').selectOption('24h');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/lookback=24h/);
    assert.equal(new URL(page.url()).searchParams.get('sort'), 'rate');
    await page.locator('table.services td.name a', { hasText: service }).click();
    await page.waitForURL(new RegExp(`/services/${service}\\?lookback=24h`));
    assert.equal(await page.locator('svg.plot').count(), 2);
    await page.goto(`${base}/map`);
    assert.ok((await page.locator('svg.service-map a.node').count()) >= 5);
    await noSidewaysScroll(page);
  });
  await context.close();
}

await runFlow('services', browser, screenshots, problems, async () => {
  await shop();
  await mesh();
  await withoutJavaScript();
});
