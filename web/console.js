// The Kairos console: sign in, then the marketer's loop in tabs — running rules with live
// counts, the editor, captures and backtests, versions, segments, campaigns. Each tab is its
// own module; this one signs in, switches tabs and switches the language.

import { session, $, signIn, loadMe, endSession, onSignedOut, applyPermissions, api, said, t, label, lang, setLang, applyStrings } from './console-session.js';
import { otherLang } from './i18n.js';
import * as rules from './console-rules.js';
import * as editor from './console-editor.js';
import * as lab from './console-lab.js';
import * as versions from './console-versions.js';
import * as segments from './console-segments.js';
import * as campaigns from './console-campaigns.js';

const panels = { rules, editor, lab, versions, segments, campaigns };
let current = 'rules';

function showLogin(message) {
  for (const p of Object.values(panels)) p.stop?.();
  for (const el of document.querySelectorAll('.tab')) el.hidden = true;
  $('tabs').hidden = true;
  $('no-tabs').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message || '';
  $('username').focus();
}

export function show(tab) {
  if (!panels[tab]) return;
  panels[current].stop?.();
  current = tab;
  for (const b of $('tabs').querySelectorAll('button')) {
    if (b.dataset.tab === tab) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  for (const el of document.querySelectorAll('.tab')) el.hidden = el.id !== `tab-${tab}`;
  panels[tab].start?.();
}

function showConsole() {
  $('login').hidden = true;
  $('tabs').hidden = false;
  $('signout').hidden = false;
  const me = session.me;
  $('who').textContent = `${me.name} (${label('console.role', me.role)})`;
  applyPermissions();
  // Only the sections the role may use are offered; the first of them opens.
  const open = [...$('tabs').querySelectorAll('button')].filter((b) => !b.hidden).map((b) => b.dataset.tab);
  $('no-tabs').hidden = open.length > 0;
  if (open.length) show(open.includes(current) ? current : open[0]);
}

onSignedOut(showLogin);

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await signIn($('username').value.trim(), $('password').value);
    $('password').value = '';
    showConsole();
  } catch (err) {
    showLogin(err.status === 401 ? t('login.failed') : said(err));
  }
});

$('signout').addEventListener('click', async () => {
  try { await api('/api/v1/auth/logout', { method: 'POST' }); } catch { /* ends here anyway */ }
  endSession();
});

$('tabs').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-tab]');
  if (b) show(b.dataset.tab);
});

// The language button names the other language, in that language.
function langButton() {
  $('lang').textContent = t('lang.switch');
  $('lang').lang = otherLang(lang);
  $('lang').setAttribute('aria-label', `${t('lang.label')}: ${t('lang.switch')}`);
}

$('lang').addEventListener('click', () => {
  setLang(otherLang(lang));
  langButton();
  // Drawn parts are drawn again in the new language.
  if (session.me) showConsole();
  else if (!$('login-error').hidden) $('login-error').hidden = true;
});

// Panels move the person along the loop (edit this rule, backtest this draft).
document.addEventListener('console:show', (e) => show(e.detail));

applyStrings();
langButton();
for (const p of Object.values(panels)) p.init?.();

if (session.token) {
  loadMe().then(showConsole, () => showLogin());
} else {
  showLogin();
}
