// The search form's filters in a real browser, filled in as a user does: choose a span
// kind, type attribute conditions (=, !=, exists, >, >=, <, <=; several in one search),
// trace and span duration bounds and a sampling rule, tick "Errors only", pick a sort,
// submit; the address then holds the query (only what was filled in), the form shows it
// again, and the results are exactly the planted traces that match, in the chosen order.
// Without JavaScript the same form works, one more attribute field per search.
// Screenshots of the filled form with its results at 1280 and 390 px, light and dark.
// Run by services/e2e/tests/explorer_search.rs against a stack holding its six planted
// traces (`every_search_filter_sort_and_page` checks the same truth table on the API).
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_TRACES (JSON: the ids of
// the slow, fast, medium, consumer, producer and batch traces), WEFT_SCREENSHOTS,
// optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { WIDE, checkPolicy, launchChromium, logIn, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const traces = JSON.parse(required('WEFT_TRACES'));
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];

const field = (page, label) => page.getByLabel(label);
const attributeFields = (page) => page.locator('.f-attrs input[name="attr"]');

/** The trace ids of the results, in the order shown. */
async function results(page) {
  const hrefs = await page.locator('.trace-list tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.href));
  return hrefs.map((href) => href.replace('/traces/', ''));
}

/** The names of the planted traces `ids` are, for messages that read. */
const named = (ids) => ids.map((id) => Object.keys(traces).find((name) => traces[name] === id) ?? id);

/** Types each condition into the last (empty) attribute field, as a user adds them. */
async function typeAttributes(page, conditions) {
  for (const condition of conditions) {
    const last = attributeFields(page).last();
    assert.equal(await last.inputValue(), '', 'the last attribute field is the empty one');
    await last.click();
    await last.pressSequentially(condition);
  }
}

/** Submits the form and waits for the results page of the new address. */
async function submit(page) {
  const before = page.url();
  await page.getByRole('button', { name: 'Find traces' }).click();
  await page.waitForURL((url) => url.href !== before && url.pathname === '/traces');
  await page.getByRole('heading', { level: 1, name: 'Traces' }).waitFor();
  return new URL(page.url()).searchParams;
}

/** Back to an empty form, through the page's own link. */
async function clearFilters(page) {
  await page.getByRole('link', { name: 'Clear filters' }).click();
  await page.waitForURL(`${base}/traces`);
  assert.equal(await attributeFields(page).count(), 1, 'a cleared form has one empty attribute field');
}

/** Asserts the query the address holds: exactly `expected`, every value as given. */
function assertQuery(params, expected) {
  const given = {};
  for (const [name, value] of params) given[name] = name in given ? [given[name], value].flat() : value;
  assert.deepEqual(given, expected, `the address holds the query: ?${params}`);
}

function assertResults(shown, expected, search) {
  assert.deepEqual(named(shown), named(expected), `${search} finds exactly these traces`);
}

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);

  await step('log in and open Traces', async () => {
    await logIn(page, base, email, password);
    await page.locator('header nav a', { hasText: 'Traces' }).click();
    await page.waitForURL(`${base}/traces`);
    assertResults(
      await results(page),
      [traces.producer, traces.consumer, traces.medium, traces.fast, traces.batch, traces.slow],
      'no filter',
    );
  });

  await step('kind, two attribute conditions, a trace duration bound and most errors first', async () => {
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await field(page, 'Span kind').selectOption({ label: 'Server' });
    await typeAttributes(page, ['http.status_code>=400', 'region=eu']);
    assert.equal(await attributeFields(page).count(), 3, 'typing in the last condition adds another');
    await field(page, 'Min trace duration').click();
    await field(page, 'Min trace duration').pressSequentially('100ms');
    await field(page, 'Sort').selectOption({ label: 'Most errors first' });
    const params = await submit(page);
    assertQuery(params, {
      lookback: '15m',
      kind: 'server',
      attr: ['http.status_code>=400', 'region=eu'],
      min_trace_duration: '100ms',
      sort: 'errors',
      limit: '20',
    });
    // The slow checkout has two failing spans, the cart one.
    assertResults(await results(page), [traces.slow, traces.medium], 'server spans with status >= 400 in eu over 100 ms');
    const values = await attributeFields(page).evaluateAll((inputs) => inputs.map((i) => i.value));
    assert.deepEqual(values, ['http.status_code>=400', 'region=eu', ''], 'the form shows the conditions again');
    assert.equal(await field(page, 'Span kind').inputValue(), 'server');
    assert.equal(await field(page, 'Min trace duration').inputValue(), '100ms');
    assert.equal(await field(page, 'Sort').inputValue(), 'errors');
    assert.match(await page.locator('.results .card-head .muted').last().innerText(), /most errors first/);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'search-filters');
  });

  await step('a shared address opens the same search', async () => {
    const shared = await openPage(context, problems);
    await shared.goto(page.url());
    assert.deepEqual(await results(shared), await results(page));
    await shared.close();
  });

  await step('a numeric condition alone, then narrowed by a second one', async () => {
    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await typeAttributes(page, ['retries>1']);
    let params = await submit(page);
    assert.deepEqual(params.getAll('attr'), ['retries>1']);
    // "many" is no number: the producer's retries are neither above nor below 1.
    assertResults(await results(page), [traces.consumer, traces.slow], 'retries > 1');
    // The answer page has a new empty field for the next condition.
    await typeAttributes(page, ['region=us']);
    params = await submit(page);
    assert.deepEqual(params.getAll('attr'), ['retries>1', 'region=us']);
    assertResults(await results(page), [traces.consumer], 'retries > 1 in us');
  });

  await step('not equal, and a trace duration upper bound', async () => {
    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await typeAttributes(page, ['region!=eu']);
    await field(page, 'Max trace duration').click();
    await field(page, 'Max trace duration').pressSequentially('60ms');
    const params = await submit(page);
    assertQuery(params, { lookback: '15m', attr: 'region!=eu', max_trace_duration: '60ms', sort: 'newest', limit: '20' });
    assertResults(await results(page), [traces.producer, traces.fast], 'not in eu, at most 60 ms');
  });

  await step('exists, at most and below, longest first', async () => {
    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await typeAttributes(page, ['cache exists']);
    await submit(page);
    assertResults(await results(page), [traces.medium], 'cache exists');

    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await typeAttributes(page, ['retries<=1.5']);
    await field(page, 'Sort').selectOption({ label: 'Longest first' });
    let params = await submit(page);
    assert.equal(params.get('sort'), 'longest');
    assertResults(await results(page), [traces.consumer, traces.fast], 'retries <= 1.5, longest first');

    // Edit the condition in place: < instead of <=.
    const condition = attributeFields(page).first();
    await condition.click({ clickCount: 3 });
    await condition.pressSequentially('retries<1.5');
    params = await submit(page);
    assert.deepEqual(params.getAll('attr'), ['retries<1.5']);
    assertResults(await results(page), [traces.fast], 'retries < 1.5');
  });

  await step('span duration bounds', async () => {
    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await field(page, 'Min span duration').click();
    await field(page, 'Min span duration').pressSequentially('550ms');
    await field(page, 'Max trace duration').click();
    await field(page, 'Max trace duration').pressSequentially('1s');
    let params = await submit(page);
    assertQuery(params, { lookback: '15m', min_duration: '550ms', max_trace_duration: '1s', sort: 'newest', limit: '20' });
    assertResults(await results(page), [traces.slow], 'a span of 550 ms or more in a trace of at most 1 s');

    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await field(page, 'Max span duration').click();
    await field(page, 'Max span duration').pressSequentially('10ms');
    params = await submit(page);
    assert.equal(params.get('max_duration'), '10ms');
    assertResults(await results(page), [traces.slow], 'a span of at most 10 ms (the cache read)');
  });

  await step('sampled by a rule', async () => {
    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await field(page, 'Sampled by rule').click();
    await field(page, 'Sampled by rule').pressSequentially('keep a quarter');
    const params = await submit(page);
    assert.equal(params.get('sampled_by'), 'keep a quarter');
    assertResults(await results(page), [traces.batch], 'kept by "keep a quarter"');
    const rate = page.locator(`tr[data-href="/traces/${traces.batch}"] td.rate`);
    assert.equal(await rate.getAttribute('title'), 'kept by keep a quarter');
    assert.match(await rate.innerText(), /^4\s*keep a quarter$/);
    await screenshotAll(page, screenshots, 'search-sampled');
  });

  await step('errors only with a kind: the span must be both', async () => {
    await clearFilters(page);
    await field(page, 'Time range').selectOption({ label: 'Last 15 minutes' });
    await field(page, 'Span kind').selectOption({ label: 'Client' });
    await page.getByLabel('Errors only').check();
    let params = await submit(page);
    assert.equal(params.get('error'), 'true');
    assertResults(await results(page), [traces.slow], 'a failing client span');
    await field(page, 'Span kind').selectOption({ label: 'Internal' });
    params = await submit(page);
    assert.equal(params.get('kind'), 'internal');
    await page.getByRole('heading', { name: 'No traces match' }).waitFor();
    assert.equal(await page.locator('.trace-list').count(), 0);
    await screenshotAll(page, screenshots, 'search-no-match');
  });

  await context.close();
}

/** Without JavaScript: each search adds one more attribute field, and the filters still apply. */
async function withoutJavaScript() {
  const context = await browser.newContext({ viewport: WIDE, javaScriptEnabled: false });
  const page = await openPage(context, problems);
  await step('without JavaScript: two conditions over two searches', async () => {
    await logIn(page, base, email, password);
    await page.goto(`${base}/traces?lookback=15m`);
    await attributeFields(page).last().fill('retries>1');
    assert.equal(await attributeFields(page).count(), 1, 'no field appears without JavaScript');
    await submit(page);
    assertResults(await results(page), [traces.consumer, traces.slow], 'retries > 1');
    assert.equal(await attributeFields(page).count(), 2, 'the answer has an empty field for the next condition');
    await attributeFields(page).last().fill('region=eu');
    const params = await submit(page);
    assert.deepEqual(params.getAll('attr').filter(Boolean), ['retries>1', 'region=eu']);
    assertResults(await results(page), [traces.slow], 'retries > 1 in eu');
  });
  await context.close();
}

await runFlow('search', browser, screenshots, problems, async () => {
  await flow();
  await withoutJavaScript();
});
