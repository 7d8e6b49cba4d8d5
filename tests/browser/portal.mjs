// The portal widget on a page of another origin (as an operator's portal would embed it):
// node portal.mjs <kairos-base> <portal-token> <page-port>
//
// Prints SHOWN <id> for every pop-up, ACCEPTED / DISMISSED <id> for the answers, READY when
// the first pop-up is up (the Rust side then pushes new offers).
import http from 'node:http';
import { say, withBrowser } from './lib.mjs';

const [base, token, port] = process.argv.slice(2);
if (!base || !token || !port) {
  console.error('usage: node portal.mjs <kairos-base> <token> <page-port>');
  process.exit(2);
}

const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>My Operator</title></head>
<body><h1>My account</h1><p>Balance: ¥48.20</p><button id="pay">Pay bill</button>
<script src="${base}/portal.js" data-token="${token}" data-lang="en" data-trigger="login"></script>
</body></html>`;
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(page);
});
await new Promise((r) => server.listen(Number(port), '127.0.0.1', r));

const cardSel = '.kairos-portal .card[data-offer-id]';

await withBrowser('portal', async (p, shot) => {
  await p.goto(`http://127.0.0.1:${port}/`);
  const first = p.locator(cardSel);
  await first.waitFor();
  const id1 = await first.getAttribute('data-offer-id');
  say('SHOWN', id1);
  const dialog = p.getByRole('dialog');
  if (!(await dialog.textContent()).includes('A special offer for you')) throw new Error('no title');
  // The language switch re-renders in Chinese, and back.
  await p.locator('.kairos-portal .lang').click();
  await p.getByRole('button', { name: '好的，我要办理' }).waitFor();
  await shot('zh');
  await p.locator('.kairos-portal .lang').click();
  await p.getByRole('button', { name: 'Yes, I want it' }).waitFor();
  await shot('popup');
  say('READY');
  // Keyboard: answer with Enter on the focused accept button.
  await p.getByRole('button', { name: 'Yes, I want it' }).focus();
  await p.keyboard.press('Enter');
  await p.locator('.kairos-portal .card.note').waitFor();
  say('ACCEPTED', id1);
  // The next one: pushed while the page was open.
  const next = p.locator(`${cardSel}:not([data-offer-id="${id1}"])`);
  await next.waitFor({ timeout: 15000 });
  const id2 = await next.getAttribute('data-offer-id');
  say('SHOWN', id2);
  await p.keyboard.press('Escape');
  await p.locator(`${cardSel}[data-offer-id="${id2}"]`).waitFor({ state: 'detached' });
  say('DISMISSED', id2);
  // Nothing else is for this customer: no further pop-up may appear.
  await p.waitForTimeout(1500);
  const left = await p.locator(cardSel).count();
  if (left) say('SHOWN', await p.locator(cardSel).first().getAttribute('data-offer-id'));
});
server.close();
