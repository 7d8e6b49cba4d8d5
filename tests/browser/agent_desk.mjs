// The agent desktop: sign in, open a customer, see the summary and offers, then a new offer
// decided while the page is open, declined with a reason.
// node agent_desk.mjs <kairos-base> <username> <password> <msisdn>
//
// Prints SUMMARY <name>, OFFER <id> per offer shown at opening, READY when the live stream
// is open (the Rust side then raises an event), LIVE <id>, DECLINED <id>.
import { say, withBrowser } from './lib.mjs';

const [base, username, password, msisdn] = process.argv.slice(2);
if (!base || !username || !password || !msisdn) {
  console.error('usage: node agent_desk.mjs <kairos-base> <username> <password> <msisdn>');
  process.exit(2);
}

await withBrowser('agent-desk', async (p, shot) => {
  await p.goto(`${base}/agent/`);
  // Keyboard only: the form's labels name the fields.
  await p.getByLabel('Username').fill(username);
  await p.getByLabel('Password').fill(password);
  await p.keyboard.press('Enter');
  await p.getByLabel('Mobile number or customer ID').waitFor();
  await p.getByLabel('Mobile number or customer ID').fill(msisdn);
  await p.keyboard.press('Enter');
  const name = p.locator('#summary .name');
  await name.waitFor();
  say('SUMMARY', (await name.textContent()).trim());
  await p.locator('#offers .offer').first().waitFor();
  const initial = await p.locator('#offers .offer').evaluateAll((els) => els.map((e) => e.dataset.offerId));
  for (const id of initial) say('OFFER', id);
  await p.locator('#live').waitFor();
  await shot('opened');
  say('READY');
  const fresh = p.locator(initial.map((id) => `:not([data-offer-id="${id}"])`).reduce((s, x) => s + x, '#offers .offer'));
  await fresh.first().waitFor({ timeout: 20000 });
  const id = await fresh.first().getAttribute('data-offer-id');
  say('LIVE', id);
  const card = p.locator(`#offers .offer[data-offer-id="${id}"]`);
  if (!(await card.locator('.why').textContent()).includes('Rule')) throw new Error('no reasons shown');
  await card.getByRole('button', { name: 'Decline', exact: true }).click();
  // The reason list is found by its label.
  await card.getByLabel('Reason').selectOption('price');
  await shot('declining');
  await card.getByRole('button', { name: 'Confirm decline' }).click();
  await card.locator('.status.declined').waitFor();
  say('DECLINED', id);
  // The switch to Chinese relabels the page.
  await p.locator('#lang').click();
  await p.getByRole('heading', { name: '最佳推荐' }).waitFor();
  await shot('zh');
});
