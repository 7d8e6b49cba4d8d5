// A rule's conversion per day in the console: pick the rule, read the chart's points.
// node conversion.mjs <kairos-base> <user> <password> <rule id>
//
// Reports POINT <day> <value> for each point, oldest first, and TITLE <text of the first>.
import { say, withBrowser } from './lib.mjs';

const [base, user, password, rule] = process.argv.slice(2);
if (!base || !user || !password || !rule) {
  console.error('usage: node conversion.mjs <kairos-base> <user> <password> <rule id>');
  process.exit(2);
}

await withBrowser('conversion', async (p, shot) => {
  await p.goto(`${base}/console/`);
  await p.getByLabel('Username').fill(user);
  await p.getByLabel('Password').fill(password);
  await p.keyboard.press('Enter');
  const row = p.locator(`#rules-table tr[data-rule="${rule}"]`);
  await row.waitFor();
  if (await p.locator('#conv-chart circle').count()) throw new Error('a conversion chart before a rule was picked');
  await row.click();
  await p.locator('#conv-rule').filter({ hasText: rule }).waitFor();
  const dots = p.locator('#conv-chart circle.dot[data-day]');
  await dots.first().waitFor();
  for (const d of await dots.all()) say('POINT', `${await d.getAttribute('data-day')} ${await d.getAttribute('data-value')}`);
  say('TITLE', (await dots.first().locator('title').textContent()).trim());
  await shot('conversion');
});
