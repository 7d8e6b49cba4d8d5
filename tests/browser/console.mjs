// The marketer's loop in the console: sign in, write a rule with an error and see it at its
// line, fix it, run its tests, capture live events and dry-run and backtest on them, have a
// second person publish it while events stream, watch its counts, and roll back.
// node console.mjs <kairos-base> <author> <publisher> <password>
//
// Reports CSP, ERROR_LINE, SUGGESTION, TESTS, DRAFT, FOUR_EYES, CAPTURED, DRY, BACKTEST,
// PUBLISHED, COUNT, ROLLED_BACK; asks the Rust side at CAPTURE (ingest events into the
// capture; answers how many), STREAM (start streaming events) and STOP (stop the stream;
// answers how many events the new rule decided).
import { ask, say, withBrowser, consoleSignIn } from './lib.mjs';

const [base, author, publisher, password] = process.argv.slice(2);
if (!base || !author || !publisher || !password) {
  console.error('usage: node console.mjs <kairos-base> <author> <publisher> <password>');
  process.exit(2);
}

// The message on line 5 names a variable nothing fills: `{amount_cent}`.
const fixed = `#{
    id: "topup-bonus", name: "Top-up bonus", kind: "dynamic",
    events: ["topup"], when: #{ amount_cents: ">= 1000" }, channels: ["portal"],
    offer: #{ code: "BONUS-1GB", validity: "1d" },
    message: "Thanks for your top-up of {amount_cents} cents: 1 GB is yours",
    tests: [
        #{ name: "a top-up gets the bonus", events: [#{ type: "topup", ts: "2026-11-23T08:15:00+08:00", attrs: #{ amount_cents: 5000, channel: "app" } }], expect: ["BONUS-1GB"] },
        #{ name: "a tiny top-up does not", events: [#{ type: "topup", ts: "2026-11-23T08:15:00+08:00", attrs: #{ amount_cents: 100, channel: "app" } }], expect: [] },
    ],
};
`;
const broken = fixed.replace('{amount_cents} cents', '{amount_cent} cents');

const signIn = (p, user) => consoleSignIn(p, user, password);

async function tab(p, name) {
  await p.getByRole('navigation', { name: 'Sections' }).getByRole('button', { name, exact: true }).click();
}

/// Polls `f` until it answers truthy: counts and states move with the page's own polling.
async function until(what, f, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const text = async (loc) => ((await loc.count()) ? (await loc.first().textContent()).trim() : null);

await withBrowser('console', async (p, shot) => {
  const resp = await p.goto(`${base}/console/`);
  say('CSP', resp.headers()['content-security-policy'] || 'none');
  await signIn(p, author);
  await p.locator('#rules-table tr[data-rule="roam"]').waitFor();

  // A new rule with a mistake: the check points at its line, with the fix.
  await tab(p, 'Editor');
  await p.getByRole('button', { name: 'New rule' }).click();
  await p.getByLabel('Rule file').fill('topup-bonus.rhai');
  await p.getByLabel('Why (shown to whoever publishes)').fill('a bonus for top-ups');
  await p.getByLabel('Rule source').fill(broken);
  const problem = p.locator('#ed-problems li.error').first();
  await problem.waitFor();
  const line = await problem.getAttribute('data-line');
  await p.locator(`#ed-gutter span.bad[data-line="${line}"]`).waitFor();
  say('ERROR_LINE', line);
  say('SUGGESTION', (await problem.locator('.suggestion').textContent()).trim());
  await shot('error');

  await p.getByLabel('Rule source').fill(fixed);
  await p.locator('#ed-status.good').waitFor();
  if (await p.locator('#ed-gutter span.bad').count()) throw new Error('the fixed rule still shows a problem');
  await p.getByRole('button', { name: 'Run its tests' }).click();
  const summary = p.locator('#test-results .summary');
  await summary.waitFor();
  say('TESTS', (await summary.textContent()).trim());
  await p.getByRole('button', { name: 'Save draft' }).click();
  const draft = await until('the draft', async () => p.locator('#ed-draft-state').getAttribute('data-draft'));
  say('DRAFT', draft);

  // Four eyes: the author is not offered the publish of their own draft.
  await tab(p, 'Versions');
  const own = p.locator(`#drafts-table tr[data-draft="${draft}"]`);
  await own.waitFor();
  if (await own.locator('button[data-act="publish"]').count()) throw new Error('the author is offered to publish their own draft');
  if (!(await own.getByRole('button', { name: 'Publish (needs another person)' }).isDisabled())) throw new Error('no disabled publish for the author');
  say('FOUR_EYES', 'author cannot publish');

  // A capture of live top-ups, filled by the Rust side.
  await tab(p, 'Captures & backtests');
  await p.locator('#cap-name').fill('top-ups');
  await p.getByLabel('Event types (comma separated, empty: all)').fill('topup');
  await p.getByRole('button', { name: 'Start capture' }).click();
  const capRow = p.locator('#cap-table tr[data-capture]').filter({ hasText: 'top-ups' });
  await capRow.waitFor();
  const capture = await capRow.getAttribute('data-capture');
  const n = await ask('CAPTURE', capture);
  await until(`${n} captured events`, async () => (await text(capRow.locator('.events'))) === n);
  await capRow.getByRole('button', { name: 'Stop' }).click();
  await until('the capture to end', async () => (await text(capRow.locator('.status')))?.startsWith('ended'));
  say('CAPTURED', n);

  // The draft tried on the captured events.
  await tab(p, 'Editor');
  await p.getByLabel('Or the events of a capture').selectOption(capture);
  await p.getByRole('button', { name: 'Load capture' }).click();
  await until('the capture in the events box', async () => (await p.getByLabel(/Events to dry-run/).inputValue()).includes('topup'));
  await p.getByRole('button', { name: 'Dry run' }).click();
  await p.locator('#dry-results tr.decision').first().waitFor();
  say('DRY', String(await p.locator('#dry-results tr.decision').count()));

  // Backtested on the capture against the published set.
  await tab(p, 'Captures & backtests');
  await p.getByLabel('Capture', { exact: true }).selectOption(capture);
  await p.getByLabel('Drafts to test (empty: the published set)').selectOption(draft);
  await p.getByRole('button', { name: 'Start backtest' }).click();
  await p.locator('#bt-status[data-status="done"]').waitFor({ timeout: 30000 });
  const btRow = p.locator('#bt-rules tr[data-rule="topup-bonus"]');
  const change = await text(p.locator('#bt-diff tr[data-rule="topup-bonus"] .change'));
  say('BACKTEST', `${await text(btRow.locator('.matched'))} ${change}`);
  await shot('backtest');

  // Someone else publishes it while events stream in.
  await p.getByRole('button', { name: 'Sign out' }).click();
  await signIn(p, publisher);
  await tab(p, 'Versions');
  const row = p.locator(`#drafts-table tr[data-draft="${draft}"]`);
  await row.waitFor();
  await ask('STREAM');
  await row.getByRole('button', { name: 'Publish', exact: true }).click();
  await p.locator('#versions-table tr.active[data-version="2"]').waitFor();
  await p.locator('#versions-table tr[data-version="2"]').getByRole('button', { name: 'Diff' }).click();
  await p.locator('#diff .add').filter({ hasText: 'topup-bonus' }).first().waitFor();
  say('PUBLISHED', '2');
  const decided = await ask('STOP');

  // Its counts in the console: every event decided once, none missing.
  await tab(p, 'Rules');
  const bonus = p.locator('#rules-table tr[data-rule="topup-bonus"]');
  await until(`${decided} matches in the console`, async () => (await text(bonus.locator('.matched'))) === decided);
  say('COUNT', `${await text(bonus.locator('.evaluated'))} ${await text(bonus.locator('.matched'))}`);
  // Charted alone, its matches line ends at the same count.
  await bonus.click();
  await p.locator('#chart-rule').filter({ hasText: 'topup-bonus' }).waitFor();
  const last = await text(p.locator('#chart svg polyline.matched title'));
  if (last !== `matched: last ${decided}`) throw new Error(`the chart says ${last}`);
  await shot('counts');

  // Rolled back: version 3 restores version 1, and the new rule is gone.
  await tab(p, 'Versions');
  await p.locator('#versions-table tr[data-version="1"]').getByRole('button', { name: 'Roll back to this' }).click();
  await p.locator('#versions-table tr.active[data-version="3"]').filter({ hasText: 'restores 1' }).waitFor();
  await tab(p, 'Rules');
  await p.locator('#rules-version[data-version="3"]').waitFor();
  await until('the new rule to leave the list', async () => (await bonus.count()) === 0);
  await p.locator('#rules-table tr[data-rule="roam"]').waitFor();
  say('ROLLED_BACK', '3');
});
