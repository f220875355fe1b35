// Alerting in a real browser: a member opens Alerts from the navigation, adds a Slack
// channel (a bad URL is refused naming the field; the URL is never shown again) and
// sends it a test notification, creates rules through the rule form (a bad threshold is
// refused next to its field, an edit pre-fills, and a script-less browser creates one
// too), watches a latency rule go firing with its observed value drawn against the
// threshold, and reads the delivery log. Every page must work under the dashboard's
// Content-Security-Policy, and at 390 px nothing may scroll sideways. Screenshots at
// 1280 and 390 px, light and dark. Run by services/e2e/tests/alerts_browser.rs against
// a stack holding slow spans of raw-client.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_PASSWORD, WEFT_SCREENSHOTS,
// WEFT_RECEIVER_URL, optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { WIDE, checkPolicy, launchChromium, logIn, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const password = required('WEFT_PASSWORD');
const screenshots = required('WEFT_SCREENSHOTS');
const receiver = required('WEFT_RECEIVER_URL');
mkdirSync(screenshots, { recursive: true });

const browser = await launchChromium();
const problems = [];

async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);

  await step('log in', () => logIn(page, base, email, password));

  await step('open Alerts from the navigation', async () => {
    await page.locator('header nav a', { hasText: 'Alerts' }).click();
    await page.waitForURL(`${base}/alerts`);
    assert.equal(await page.locator('header nav a[aria-current="page"]').innerText(), 'Alerts');
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    await page.getByText('No alert rules yet.').waitFor();
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-empty');
  });

  let channelId;
  await step('add a Slack channel: a bad URL names the field, a good one is never shown again', async () => {
    await page.locator('nav.subnav a', { hasText: 'Channels' }).click();
    await page.waitForURL(`${base}/alerts/channels`);
    await page.getByLabel('Name').fill('ops slack');
    await page.locator('input[name=url]').evaluate((e) => { e.type = 'text'; });
    await page.locator('input[name=url]').fill('ftp://hooks.example.com/x');
    await page.getByRole('button', { name: 'Add channel' }).click();
    await page.locator('#channel-error').waitFor();
    assert.match(await page.locator('#channel-error').innerText(), /target\.webhook_url: must be an http or https URL/);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-channel-error');
    await page.locator('input[name=url]').fill(`${receiver}/slack`);
    await page.getByRole('button', { name: 'Add channel' }).click();
    await page.getByText('Channel ops slack added.').waitFor();
    assert.doesNotMatch(await page.content(), /\/slack"/, 'the webhook URL is not shown again');
    channelId = (await page.locator('table.channels code').first().innerText()).trim();
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.getByText('Test notification queued').waitFor();
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-channels');
  });

  await step('the rule form: a bad threshold is named next to its field and what was typed stays', async () => {
    await page.locator('nav.subnav a', { hasText: 'Rules' }).click();
    await page.waitForURL(`${base}/alerts`);
    await page.locator('.kind-picker a', { hasText: 'Latency percentile' }).click();
    await page.waitForURL(/kind=latency/);
    assert.equal(await page.locator('.kind-picker a.current').innerText(), 'Latency percentile');
    await page.locator('#f-name').fill('raw-client p99');
    await page.locator('#f-service').selectOption('raw-client');
    await page.locator('#f-percentile').selectOption('p99');
    await page.locator('#f-threshold').fill('-1');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-rule-form');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.locator('#error-threshold').waitFor();
    assert.match(await page.locator('#error-threshold').innerText(), /must be a number of at least 0/);
    assert.match(await page.locator('#rule-error').innerText(), /Threshold: must be a number of at least 0/);
    assert.equal(await page.locator('#f-threshold').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#f-name').inputValue(), 'raw-client p99');
    assert.equal(await page.locator('#f-service').inputValue(), 'raw-client');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-rule-error');
  });

  let ruleUrl;
  await step('create a latency rule through the form; it fires and its chart shows the threshold', async () => {
    await page.locator('#f-threshold').fill('300');
    await page.locator('select[name=threshold_unit]').selectOption('ms');
    await page.locator('#f-window').fill('5');
    await page.locator('select[name=window_unit]').selectOption('min');
    await page.locator('#f-for').fill('2');
    await page.locator('select[name=for_unit]').selectOption('s');
    await page.locator('#f-repeat').fill('0');
    await page.locator(`input[name="channel.${channelId}"]`).check();
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.waitForURL(/\/alerts\/rules\//);
    ruleUrl = page.url();
    // The edit form is the same form, filled with the rule.
    assert.equal(await page.locator('#f-threshold').inputValue(), '300');
    assert.equal(await page.locator('#f-for').inputValue(), '2');
    assert.equal(await page.locator('select[name=for_unit]').inputValue(), 's');
    assert.equal(await page.locator('#f-percentile').inputValue(), 'p99');
    assert.ok(await page.locator(`input[name="channel.${channelId}"]`).isChecked(), 'the channel stays ticked');
    assert.match(await page.locator('main').innerText(), /p99 latency of raw-client > 300 ms \(over 5 min, for 2 s\)/);
    await waitFor('the rule to fire', async () => {
      await page.reload();
      return (await page.locator('#rule-state').innerText()) === 'firing' && (await page.locator('.alert-chart circle').count()) >= 8;
    });
    assert.equal(await page.locator('.alert-chart line.threshold').count(), 1);
    assert.match(await page.locator('.alert-chart figcaption').innerText(), /threshold 300 ms/);
    assert.ok((await page.locator('table.history tbody tr').count()) >= 1, 'the firing is in the history');
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-rule-firing');
  });

  await step('a span-duration rule, the list with states, mute, and the delivery log', async () => {
    await page.goto(`${base}/alerts?kind=span_duration#new-rule`);
    await page.locator('#f-name').fill('slow spans');
    await page.locator('#f-service').selectOption('raw-client');
    await page.locator('#f-threshold').fill('2');
    await page.locator('select[name=threshold_unit]').selectOption('s');
    await page.locator('#f-window').fill('2');
    await page.locator('select[name=window_unit]').selectOption('min');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.waitForURL(/\/alerts\/rules\//);
    await page.getByRole('button', { name: 'Mute for 1 hour' }).click();
    await page.getByText('Muted: changes are recorded').waitFor();
    await page.goto(`${base}/alerts`);
    await page.locator('#silences input[name=labels]').fill('service=raw-client');
    await page.locator('input[name=comment]').fill('deploying the new checkout');
    await page.getByRole('button', { name: 'Silence', exact: true }).click();
    await page.getByText('Silenced: matching alerts').waitFor();
    assert.match(await page.locator('table.silences').innerText(), /service=raw-client/);
    assert.equal(await page.locator('table.alert-rules tbody tr').count(), 2);
    assert.match(await page.locator('table.alert-rules').innerText(), /firing/);
    assert.match(await page.locator('table.alert-rules').innerText(), /muted until/);
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-rules');
    await page.locator('nav.subnav a', { hasText: 'Delivery log' }).click();
    await page.waitForURL(`${base}/alerts/deliveries`);
    await waitFor('two sent deliveries', async () => {
      await page.reload();
      return (await page.locator('table.deliveries .badge.delivery-sent').count()) >= 2;
    });
    await checkPolicy(page);
    await screenshotAll(page, screenshots, 'alerts-deliveries');
    await page.goto(ruleUrl);
  });
  await context.close();

  await step('without JavaScript, an error-rate rule is created through the form', async () => {
    const bare = await browser.newContext({ viewport: WIDE, javaScriptEnabled: false });
    const plain = await openPage(bare, problems);
    await logIn(plain, base, email, password);
    await plain.goto(`${base}/alerts`);
    await plain.locator('.kind-picker a', { hasText: 'Error rate' }).click();
    await plain.waitForURL(/kind=error_rate/);
    await plain.locator('#f-name').fill('raw-client errors');
    await plain.locator('#f-service').selectOption('raw-client');
    await plain.locator('#f-threshold').fill('5');
    await plain.locator('#f-min-requests').fill('0');
    await plain.getByRole('button', { name: 'Create rule' }).click();
    await plain.locator('#error-min_requests').waitFor();
    assert.match(await plain.locator('#error-min_requests').innerText(), /must be at least 1/);
    await plain.locator('#f-min-requests').fill('50');
    await plain.getByRole('button', { name: 'Create rule' }).click();
    await plain.waitForURL(/\/alerts\/rules\//);
    assert.match(await plain.locator('main').innerText(), /error rate of raw-client > 5 %/);
    assert.equal(await plain.locator('#f-min-requests').inputValue(), '50');
    await bare.close();
  });

}

await runFlow('alerts', browser, screenshots, problems, flow);
