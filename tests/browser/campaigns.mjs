// A campaign in the console: a marketer plans and submits it, a team lead approves it, the
// marketer launches it and reads its results, then completes it.
// node campaigns.mjs <kairos-base> <marketer> <approver> <password> <segment name>
//
// Reports PLANNED <id>, SUBMITTED, ROLE_AWARE, APPROVED, LAUNCHED, DECIDED <n>, COMPLETED.
import { say, withBrowser, consoleSignIn } from './lib.mjs';

const [base, marketer, approver, password, segment] = process.argv.slice(2);
if (!base || !marketer || !approver || !password || !segment) {
  console.error('usage: node campaigns.mjs <kairos-base> <marketer> <approver> <password> <segment name>');
  process.exit(2);
}

const signIn = (p, user) => consoleSignIn(p, user, password, 'Campaigns');

async function signOut(p) {
  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.getByRole('heading', { name: 'Sign in' }).waitFor();
}

await withBrowser('campaigns', async (p, shot) => {
  await p.goto(`${base}/console/`);
  await signIn(p, marketer);
  await p.getByLabel('Segment', { exact: true }).selectOption({ label: segment });
  await p.locator('#camp-name').fill('Data pack for everyone');
  await p.getByLabel('Offer code').fill('DATA10');
  await p.getByLabel('Message').fill('10 GB for you this week');
  await p.getByLabel('Channel').selectOption('sms');
  await p.getByRole('button', { name: 'Save plan' }).click();
  const row = p.locator('#camp-table tr[data-campaign]').filter({ hasText: 'Data pack for everyone' });
  await row.locator('.state', { hasText: 'plan' }).waitFor();
  say('PLANNED', await row.getAttribute('data-campaign'));
  // The author is not offered the approval.
  await row.getByRole('button', { name: 'Submit for approval' }).click();
  await row.locator('.state', { hasText: 'submitted' }).waitFor();
  if (await row.getByRole('button', { name: 'Approve' }).count()) throw new Error('a marketer is offered to approve');
  say('SUBMITTED');
  await signOut(p);

  await signIn(p, approver);
  // A team lead reads rules but neither edits them nor captures events: those sections are
  // not offered.
  const nav = p.getByRole('navigation', { name: 'Sections' });
  if (await nav.getByRole('button', { name: 'Editor', exact: true }).isVisible()) throw new Error('the editor is offered to a team lead');
  if (await nav.getByRole('button', { name: 'Captures & backtests', exact: true }).isVisible()) throw new Error('captures are offered to a team lead');
  say('ROLE_AWARE', 'no editor, no captures');
  await row.getByRole('button', { name: 'Approve' }).click();
  await row.locator('.state', { hasText: 'approved' }).waitFor();
  if (await row.getByRole('button', { name: 'Launch' }).count()) throw new Error('the approver is offered to launch');
  say('APPROVED');
  await signOut(p);

  await signIn(p, marketer);
  await row.getByRole('button', { name: 'Launch' }).click();
  await row.locator('.state', { hasText: 'active' }).waitFor();
  say('LAUNCHED');
  await row.getByRole('button', { name: 'Track' }).click();
  const decided = p.locator('#camp-detail .decided');
  await decided.waitFor();
  await p.locator('#camp-detail li', { hasText: 'targeted' }).first().waitFor();
  say('DECIDED', (await decided.textContent()).trim());
  await shot('results');
  await row.getByRole('button', { name: 'Complete' }).click();
  await row.locator('.state', { hasText: 'completed' }).waitFor();
  say('COMPLETED');
});
