// Shared by the browser scenarios: start Chromium, report steps on stdout for the Rust side
// (one `WORD value` per line), and fail loudly with the reason.
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const CHROMIUM = process.env.KAIROS_CHROMIUM || '/usr/bin/chromium';

export function say(word, value = '') {
  process.stdout.write(`${word} ${value}\n`);
}

// Answers the Rust side writes on our stdin, one line per `ask`. Opened on the first ask
// only: a script that never asks must not wait on its stdin to exit.
let answers = null;
const pending = [];
const early = [];

/// Reports `WORD value` and waits for the Rust side's one-line answer (after it acted: events
/// ingested, a stream started or stopped).
export function ask(word, value = '') {
  if (!answers) {
    answers = createInterface({ input: process.stdin });
    answers.on('line', (l) => { const w = pending.shift(); if (w) w(l); else early.push(l); });
  }
  say(word, value);
  return new Promise((resolve) => (early.length ? resolve(early.shift()) : pending.push(resolve)));
}

/// `allow`: console errors the scenario causes on purpose (a request the server refuses shows
/// in the console as a failed load); any other error on the page fails the scenario.
export async function withBrowser(name, body, { allow = [] } = {}) {
  if (!existsSync(CHROMIUM)) {
    console.error(`Chromium not found at ${CHROMIUM}: run scripts/services.sh`);
    process.exit(2);
  }
  // In containers Chromium runs as root, where its sandbox cannot start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !allow.some((re) => re.test(m.text()))) errors.push(m.text()); });
  const shots = process.env.KAIROS_BROWSER_SCREENSHOTS;
  const shot = async (label) => {
    if (!shots) return;
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, `${name}-${label}.png`) });
  };
  try {
    await body(page, shot);
    if (errors.length) throw new Error(`errors on the page:\n${errors.join('\n')}`);
    say('DONE');
  } catch (e) {
    await shot('failure').catch(() => {});
    console.error(`${name}: ${e.stack || e}`);
    if (errors.length) console.error(`page errors:\n${errors.join('\n')}`);
    process.exitCode = 1;
  } finally {
    answers?.close();
    await browser.close();
  }
}

/// Signs in on the console's form and, when `section` is given, opens that section.
export async function consoleSignIn(p, user, password, section) {
  await p.getByLabel('Username').fill(user);
  await p.getByLabel('Password').fill(password);
  await p.keyboard.press('Enter');
  await p.locator('#who').filter({ hasText: user }).waitFor();
  if (section) {
    await p.getByRole('navigation', { name: 'Sections' }).getByRole('button', { name: section, exact: true }).click();
  }
}
