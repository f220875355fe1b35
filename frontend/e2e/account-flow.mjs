// The account basics in a real browser: a user who forgot the password asks for a reset
// link from the login page, opens the link from the email (the Rust test reads it off a
// real SMTP server and hands it over in WEFT_RESET_LINK_FILE), is refused a common
// password with the reason, sets a strong one and logs in; changes the password on the
// account page; sees the confirmation step of revoking a key and that a sole owner is
// offered no role change; reads the day's spans and log records on the usage page (the
// test sent them before the flow); and deletes the organisation after typing its name. At
// 390 px nothing may scroll sideways. Screenshots at 1280 and 390 px, light and dark. Run
// by services/e2e/tests/account_browser.rs.
//
// Environment: WEFT_QUERY_URL, WEFT_EMAIL, WEFT_ORGANISATION, WEFT_RESET_LINK_FILE,
// WEFT_LOG_BYTES (the exact bytes of the log lines the test sent), WEFT_SCREENSHOTS,
// optionally WEFT_CHROMIUM.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PHONE, WIDE, launchChromium, logIn, openPage, required, runFlow, screenshotAll, step } from './harness.mjs';

const base = required('WEFT_QUERY_URL').replace(/\/$/, '');
const email = required('WEFT_EMAIL');
const organisation = required('WEFT_ORGANISATION');
const linkFile = required('WEFT_RESET_LINK_FILE');
const logBytes = Number(required('WEFT_LOG_BYTES'));
const screenshots = required('WEFT_SCREENSHOTS');
mkdirSync(screenshots, { recursive: true });

const RESET_PASSWORD = 'violet tandem quarry lantern';
const CHANGED_PASSWORD = 'amber glacier whistle orchard';

const browser = await launchChromium();
const problems = [];

async function heading(page, name) {
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor();
}

/** The reset link, once the test has read it off the SMTP server. */
async function resetLink() {
  const deadline = Date.now() + 30_000;
  while (!existsSync(linkFile)) {
    assert.ok(Date.now() < deadline, 'no reset email within 30 s');
    await sleep(100);
  }
  return readFileSync(linkFile, 'utf8').trim();
}

async function flow() {
  const context = await browser.newContext({ viewport: WIDE });
  const page = await openPage(context, problems);

  await step('ask for a reset link from the login page', async () => {
    await page.goto(`${base}/login`);
    await screenshotAll(page, screenshots, 'login');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.waitForURL(`${base}/password/forgot`);
    await heading(page, 'Forgot your password?');
    await screenshotAll(page, screenshots, 'forgot');
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.locator('#reset-sent').waitFor();
    assert.match(await page.locator('#reset-sent').innerText(), /works once, within 1 hour/);
    await screenshotAll(page, screenshots, 'forgot-sent');
  });

  await step('open the emailed link; a common password is refused with the reason', async () => {
    const link = await resetLink();
    assert.ok(link.startsWith(`${base}/password/reset/`), link);
    await page.goto(link);
    await heading(page, 'Choose a new password');
    await screenshotAll(page, screenshots, 'reset');
    await page.locator('input[name="new_password"]').fill('password1234');
    await page.locator('input[name="confirm"]').fill('password1234');
    await page.getByRole('button', { name: 'Set password' }).click();
    const error = page.getByRole('alert');
    await error.waitFor();
    assert.match(await error.innerText(), /most common passwords/);
    await screenshotAll(page, screenshots, 'reset-refused');
  });

  await step('set a strong password and log in with it', async () => {
    await page.locator('input[name="new_password"]').fill(RESET_PASSWORD);
    await page.locator('input[name="confirm"]').fill(RESET_PASSWORD);
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.waitForURL(`${base}/login?notice=password-reset`);
    await page.getByText('Your password is set. Log in with it.').waitFor();
    await screenshotAll(page, screenshots, 'reset-done');
    await logIn(page, base, email, RESET_PASSWORD);
    // The link worked once.
    const again = await page.goto(await resetLink());
    assert.equal(again.status(), 404);
    await heading(page, 'This link is not valid');
  });

  await step('change the password on the account page', async () => {
    await page.goto(`${base}/keys`);
    await page.locator('header').getByRole('link', { name: 'Account' }).click();
    await page.waitForURL(`${base}/account`);
    await heading(page, 'Your account');
    await screenshotAll(page, screenshots, 'account');
    await page.getByLabel('Current password').fill('not the password at all');
    await page.locator('input[name="new_password"]').fill(CHANGED_PASSWORD);
    await page.locator('input[name="confirm"]').fill(CHANGED_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Your current password is not right.').waitFor();
    await page.getByLabel('Current password').fill(RESET_PASSWORD);
    await page.locator('input[name="new_password"]').fill(CHANGED_PASSWORD);
    await page.locator('input[name="confirm"]').fill(CHANGED_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Your password is changed.').waitFor();
    await screenshotAll(page, screenshots, 'account-changed');
  });

  await step('revoking a key asks first; a sole owner is offered nothing that fails', async () => {
    await page.goto(`${base}/keys`);
    const row = page.getByRole('row').filter({ hasText: 'default ingest' });
    await row.getByRole('button', { name: 'Revoke…' }).click();
    await page.waitForURL(/\/keys\/[0-9a-f-]+\/revoke\??$/);
    await heading(page, 'Revoke the key \u201cdefault ingest\u201d?');
    await screenshotAll(page, screenshots, 'key-revoke-confirm');
    await page.getByRole('link', { name: 'Cancel' }).click();
    await page.waitForURL(`${base}/keys`);
    assert.equal(await row.getByText('active', { exact: true }).count(), 1, 'cancel revokes nothing');
    await page.goto(`${base}/members`);
    const me = page.getByRole('row').filter({ hasText: email });
    assert.equal(await me.getByRole('combobox').count(), 0, 'no role change for the sole owner');
    assert.equal(await me.getByRole('button').count(), 0, 'no leaving for the sole owner');
    await me.getByText('only owner').waitFor();
    await screenshotAll(page, screenshots, 'members-sole-owner');
  });

  await step('the usage page shows the day\'s spans and log records', async () => {
    await page.locator('header nav').getByRole('link', { name: 'Usage' }).click();
    await page.waitForURL(`${base}/usage`);
    await heading(page, 'Usage');
    const table = page.locator('table.usage');
    for (const group of ['Spans', 'Log records']) {
      assert.equal(await table.getByRole('columnheader', { name: group, exact: true }).count(), 1, group);
    }
    const today = table.locator('tbody tr').first();
    const cell = async (label) => (await today.locator(`td[data-label="${label}"]`).innerText()).trim();
    assert.equal(await cell('Spans received'), '3');
    assert.equal(await cell('Spans accepted'), '3');
    assert.equal(await cell('Log records received'), '30');
    assert.equal(await cell('Log records accepted'), '29');
    assert.equal(await cell('Log records rejected'), '1');
    // Bytes in units to read at a glance, the exact count on hover.
    const bytes = today.locator('td[data-label="Log bytes accepted"]');
    assert.equal((await bytes.innerText()).trim(), `${(logBytes / 1000).toFixed(1)} kB`);
    assert.equal(await bytes.getAttribute('title'), `${logBytes.toLocaleString('en-US')} bytes`);
    await screenshotAll(page, screenshots, 'usage');
    // On a phone each day is a card of labelled numbers.
    await page.setViewportSize(PHONE);
    const label = await bytes.evaluate((td) => getComputedStyle(td, '::before').content);
    assert.equal(label, '"Log bytes accepted"');
    assert.equal(await table.locator('thead').isVisible(), false);
    await page.setViewportSize(WIDE);
  });

  await step('delete the organisation after typing its name', async () => {
    await page.goto(`${base}/account`);
    await page.getByRole('link', { name: 'Delete organisation…' }).click();
    await page.waitForURL(`${base}/organisation/delete`);
    await heading(page, `Delete ${organisation}?`);
    await screenshotAll(page, screenshots, 'delete');
    await page.getByLabel(`Type ${organisation} to confirm`).fill(organisation.toLowerCase());
    await page.getByRole('button', { name: 'Delete this organisation' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /exactly as shown/);
    await screenshotAll(page, screenshots, 'delete-mistyped');
    await page.getByLabel(`Type ${organisation} to confirm`).fill(organisation);
    await page.getByRole('button', { name: 'Delete this organisation' }).click();
    await page.waitForURL(`${base}/login?notice=organisation-deleted`);
    await page.getByText('all its data are deleted').waitFor();
    await screenshotAll(page, screenshots, 'deleted');
    // The account went with it.
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(CHANGED_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Wrong email or password.').waitFor();
  });
  await context.close();
}

await runFlow('account', browser, screenshots, problems, flow);
