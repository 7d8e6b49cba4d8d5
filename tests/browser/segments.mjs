// Segments in the console: a marketer builds one from conditions, counted live as they are
// edited (a wrong value is refused with its place named, live and on saving), reads its member
// count, and plans a campaign for it; deleting it is then refused naming the campaign, while a
// segment no campaign targets is deleted; a team lead sees it read-only, counted in the lead's
// own scope.
// node segments.mjs <kairos-base> <marketer> <lead> <password> <region id> <other region id>
//
// Reports LIVE_ONE <customers> <lines> <criteria json> (one condition, not saved),
// LIVE_REFUSED <message>, REFUSED <message>, LIVE <customers> <lines> <criteria json>,
// SEGMENT <id>, COUNT <customers> <lines>, LISTED <lines>, CRITERIA <json>, PRESELECTED
// <segment id>, PLANNED <campaign id>, KEPT <message>, DELETED <id>, READ_ONLY, LEAD_COUNT
// <customers> <lines>.
import { say, withBrowser, consoleSignIn } from './lib.mjs';

const [base, marketer, lead, password, east, west] = process.argv.slice(2);
if (!base || !marketer || !lead || !password || !east || !west) {
  console.error('usage: node segments.mjs <kairos-base> <marketer> <lead> <password> <region> <other region>');
  process.exit(2);
}

const signIn = (p, user) => consoleSignIn(p, user, password, 'Segments');

/// Sets condition `i` (0-based) of the builder.
async function condition(p, i, field, op, value) {
  const row = p.locator('#seg-conditions li').nth(i);
  await row.getByLabel('Field').selectOption(field);
  await row.getByLabel('Test').selectOption(op);
  await row.getByLabel('Value').fill(value);
}

/// The live count of the form's criteria as they stand now (not of an earlier state):
/// `<customers> <lines> <criteria json>`.
async function live(p) {
  const el = await p.waitForFunction(() => {
    const e = document.getElementById('seg-live');
    const now = JSON.stringify(JSON.parse(document.getElementById('seg-json').value));
    return e.dataset.lines !== undefined && e.dataset.criteria === now && e;
  });
  return el.evaluate((e) => `${e.dataset.customers} ${e.dataset.lines} ${e.dataset.criteria}`);
}

const counted = async (p) => {
  const c = p.locator('#seg-count[data-segment]');
  await c.waitFor();
  return c;
};

await withBrowser('segments', async (p, shot) => {
  // Deleting asks first: yes.
  p.on('dialog', (d) => d.accept());
  await p.goto(`${base}/console/`);
  await signIn(p, marketer);
  await p.getByRole('button', { name: 'New segment' }).click();
  await p.locator('#seg-name').fill('Individuals east and west');
  await p.getByLabel('Description').fill('every individual of both regions');
  await condition(p, 0, 'customer_type', '=', 'individual');
  say('LIVE_ONE', await live(p));
  await p.getByRole('button', { name: 'Add a condition' }).click();
  await condition(p, 1, 'region_id', 'in', `${east}, ${west}`);
  // A score that is not a number: the live count says where, and so does saving.
  await p.getByRole('button', { name: 'Add a condition' }).click();
  await condition(p, 2, 'churn_score', '>=', 'high');
  const liveBad = p.locator('#seg-live.bad').filter({ hasText: 'criteria.all[2].value' });
  await liveBad.waitFor();
  say('LIVE_REFUSED', (await liveBad.textContent()).trim());
  await p.getByRole('button', { name: 'Save segment' }).click();
  const error = p.locator('#seg-error');
  await error.waitFor();
  say('REFUSED', (await error.textContent()).trim());
  await p.locator('#seg-conditions li').nth(2).getByRole('button', { name: 'Remove' }).click();
  say('CRITERIA', JSON.stringify(JSON.parse(await p.getByLabel('Criteria (JSON)').inputValue())));
  say('LIVE', await live(p));
  await p.getByRole('button', { name: 'Save segment' }).click();

  const count = await counted(p);
  const id = await count.getAttribute('data-segment');
  say('SEGMENT', id);
  say('COUNT', `${await count.getAttribute('data-customers')} ${await count.getAttribute('data-lines')}`);
  if (!(await error.isHidden())) throw new Error('the error stayed after a good save');
  const listed = p.locator(`#seg-table tr[data-segment="${id}"] .lines`);
  await listed.filter({ hasText: /\d/ }).waitFor();
  say('LISTED', (await listed.textContent()).trim());
  await shot('segment');

  // Straight to a campaign plan, the segment already chosen.
  await p.getByRole('button', { name: 'Plan a campaign for this segment' }).click();
  await p.locator('#tab-campaigns').waitFor({ state: 'visible' });
  await p.locator(`#camp-segment option[value="${id}"]`).waitFor({ state: 'attached' });
  const chosen = await p.getByLabel('Segment', { exact: true }).inputValue();
  say('PRESELECTED', chosen);
  await p.locator('#camp-name').fill('Data for individuals');
  await p.getByLabel('Offer code').fill('DATA10');
  await p.getByLabel('Message').fill('10 GB for you this week');
  await p.getByRole('button', { name: 'Save plan' }).click();
  const row = p.locator('#camp-table tr[data-campaign]').filter({ hasText: 'Data for individuals' });
  await row.waitFor();
  say('PLANNED', await row.getAttribute('data-campaign'));

  // Targeted by that plan, the segment is not deleted, and the form says which campaign.
  await p.getByRole('navigation', { name: 'Sections' }).getByRole('button', { name: 'Segments', exact: true }).click();
  await p.locator(`#seg-table tr[data-segment="${id}"]`).getByRole('button', { name: 'Edit' }).click();
  await p.locator(`#seg-count[data-segment="${id}"]`).waitFor();
  await p.getByRole('button', { name: 'Delete segment' }).click();
  const kept = p.locator('#seg-error').filter({ hasText: 'Data for individuals' });
  await kept.waitFor();
  say('KEPT', (await kept.textContent()).trim());
  // One nobody targets goes.
  await p.getByRole('button', { name: 'New segment' }).click();
  await p.locator('#seg-name').fill('Short-lived');
  await condition(p, 0, 'customer_type', '=', 'individual');
  await p.getByRole('button', { name: 'Save segment' }).click();
  const shortLived = p.locator('#seg-count[data-segment]').filter({ hasText: 'Short-lived' });
  await shortLived.waitFor();
  const gone = await shortLived.getAttribute('data-segment');
  await p.locator(`#seg-table tr[data-segment="${gone}"]`).waitFor();
  await p.getByRole('button', { name: 'Delete segment' }).click();
  await p.locator(`#seg-table tr[data-segment="${gone}"]`).waitFor({ state: 'detached' });
  if (await p.getByRole('button', { name: 'Delete segment' }).isVisible()) throw new Error('Delete is offered for a new segment');
  say('DELETED', gone);

  await p.getByRole('button', { name: 'Sign out' }).click();
  await signIn(p, lead);
  const seg = p.locator(`#seg-table tr[data-segment="${id}"]`);
  await seg.waitFor();
  // A team lead reads segments but may not change them or plan for them.
  for (const name of ['Save segment', 'New segment', 'Add a condition', 'Plan a campaign', 'Delete segment']) {
    if (await p.getByRole('button', { name, exact: true }).isVisible()) throw new Error(`${name} is offered to a team lead`);
  }
  say('READ_ONLY');
  await seg.getByRole('button', { name: 'View' }).click();
  const leadCount = p.locator(`#seg-count[data-segment="${id}"]`);
  await leadCount.waitFor();
  if (await p.getByRole('button', { name: 'Plan a campaign for this segment' }).isVisible()) throw new Error('a team lead is offered to plan');
  say('LEAD_COUNT', `${await leadCount.getAttribute('data-customers')} ${await leadCount.getAttribute('data-lines')}`);
}, { allow: [/status of 400/, /status of 409/] });
