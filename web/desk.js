// The agent desktop: sign in, open a customer (a touchpoint that asks the engine for the
// best offers now), see who they are and what to offer with why, answer, and watch new
// offers arrive while the customer is open.

import { call, readEvents, esc, ApiError } from './api.js';
import { pickLang, saveLang, translator, otherLang } from './i18n.js';

const TOKEN_KEY = 'kairos.desk.token';
const USER_KEY = 'kairos.desk.user';
const LANG_KEY = 'kairos.desk.lang';
const REASONS = ['price', 'not_interested', 'already_has', 'call_back_later', 'other'];
const base = '';

let lang = pickLang(null, LANG_KEY);
let t = translator(lang);
let token = sessionStorage.getItem(TOKEN_KEY);
let streamAbort = null;
let current = null; // { msisdn, view }
const offers = new Map(); // id -> { offer, fresh, answered }
const seen = new Set();

const $ = (id) => document.getElementById(id);

function applyStrings() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  $('query').placeholder = t('open.placeholder');
  $('lang').textContent = t('lang.switch');
  $('lang').setAttribute('aria-label', t('lang.label'));
  document.title = `Kairos · ${t('desk.title')}`;
  if (current) { renderSummary(); renderOffers(); }
}

function showLogin(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopStream();
  $('desk').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('username').focus();
}

function showDesk() {
  $('login').hidden = true;
  $('desk').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = sessionStorage.getItem(USER_KEY) || '';
  $('query').focus();
}

async function api(path, opts = {}) {
  try {
    return await call(base, path, { token, ...opts });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin(t('error.session'));
    throw e;
  }
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const username = $('username').value.trim();
  try {
    const r = await call(base, '/api/v1/auth/login', {
      method: 'POST',
      body: { username, password: $('password').value },
    });
    token = r.token;
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, username);
    $('password').value = '';
    showDesk();
  } catch (err) {
    showLogin(err.status === 401 || err.status === 400 ? t('login.failed') : t('error.generic', { msg: err.message }));
  }
});

$('signout').addEventListener('click', async () => {
  try { await call(base, '/api/v1/auth/logout', { token, method: 'POST' }); } catch { /* gone anyway */ }
  current = null;
  $('customer').hidden = true;
  showLogin();
});

$('lang').addEventListener('click', () => {
  lang = otherLang(lang);
  saveLang(LANG_KEY, lang);
  t = translator(lang);
  applyStrings();
});

$('open-form').addEventListener('submit', (e) => {
  e.preventDefault();
  openCustomer($('query').value.trim());
});

function say(text) {
  $('desk-message').textContent = text;
  $('desk-message').hidden = !text;
}

async function openCustomer(q) {
  if (!q) return;
  stopStream();
  offers.clear();
  say('');
  let view;
  try {
    if (/^\d{5,15}$/.test(q)) {
      view = await api(`/api/v1/lines/${encodeURIComponent(q)}/view`);
    } else {
      view = await api(`/api/v1/customers/${encodeURIComponent(q)}/view`);
    }
  } catch (e) {
    $('customer').hidden = true;
    current = null;
    say(e.status === 404 ? t('open.notfound', { q }) : t('error.generic', { msg: e.message }));
    return;
  }
  const line = view.line || (view.lines || [])[0];
  if (!line) {
    $('customer').hidden = true;
    say(t('open.nolines'));
    return;
  }
  current = { msisdn: line.msisdn, line, view };
  $('customer').hidden = false;
  renderSummary();
  renderOffers();
  // Listen first, so an offer decided for this visit is not missed between the two calls.
  startStream(line.msisdn);
  try {
    const visit = await api('/api/v1/agent/visits', { method: 'POST', body: { msisdn: line.msisdn } });
    for (const o of visit.offers) add(o, false);
  } catch (e) {
    if (e.status !== 401) say(t('error.generic', { msg: e.message }));
  }
  renderOffers();
}

function startStream(msisdn) {
  const ctl = new AbortController();
  streamAbort = ctl;
  readEvents(`/api/v1/agent/subscribers/${encodeURIComponent(msisdn)}/stream`, {
    token,
    signal: ctl.signal,
    onState: (s) => { $('live').hidden = s !== 'open'; },
    onEvent: (ev) => {
      if (ev.event !== 'offer' || !current || current.msisdn !== msisdn) return;
      add(JSON.parse(ev.data), true);
      renderOffers();
    },
  });
}

function stopStream() {
  if (streamAbort) streamAbort.abort();
  streamAbort = null;
  $('live').hidden = true;
}

function add(offer, fresh) {
  if (offers.has(offer.id)) return;
  offers.set(offer.id, { offer, fresh, answered: null });
}

function renderSummary() {
  const { view, line } = current;
  const c = view.customer;
  const v = view.value || {};
  const churn = Number(v.churn_score || 0);
  const rows = [
    ['sum.msisdn', line.msisdn],
    ['sum.plan', line.plan],
    ['sum.type', c.customer_type],
    ['sum.tier', v.value_tier],
    ['sum.churn', `${Math.round(churn * 100)}%`, churn >= 0.6 ? 'risk-high' : ''],
    ['sum.arpu', v.arpu_cents != null ? `¥${(v.arpu_cents / 100).toFixed(2)}` : '—'],
    ['sum.segment', v.segment || '—'],
    ['sum.language', c.language],
  ];
  $('summary').innerHTML = `<div class="name">${esc(c.name)}</div><div class="muted">${esc(c.id)}</div>
    <dl>${rows.map(([k, val, cls]) => `<dt>${esc(t(k))}</dt><dd class="${cls || ''}">${esc(val ?? '—')}</dd>`).join('')}</dl>`;
}

function sorted() {
  return [...offers.values()].sort((a, b) => b.offer.score - a.offer.score);
}

function renderOffers() {
  const list = $('offers');
  const items = sorted();
  $('no-offers').hidden = items.length > 0;
  // Keep a decline form that is open (and its focus) while other cards refresh.
  const open = list.querySelector('.decline-box:not([hidden])')?.closest('.offer')?.dataset.offerId;
  list.innerHTML = '';
  for (const item of items) list.appendChild(card(item, item.offer.id === open));
  for (const item of items) {
    item.fresh = false;
    markSeen(item.offer.id);
  }
}

// The agent has the offer on screen: an agent-channel offer is delivered only now.
function markSeen(id) {
  if (seen.has(id)) return;
  seen.add(id);
  api(`/api/v1/agent/offers/${encodeURIComponent(id)}/seen`, { method: 'POST' }).catch(() => seen.delete(id));
}

function card(item, declineOpen) {
  const o = item.offer;
  const li = document.createElement('li');
  li.className = `offer${item.fresh ? ' fresh' : ''}${item.answered ? ' answered' : ''}`;
  li.dataset.offerId = o.id;
  li.tabIndex = -1;
  const why = (o.reasons || [])
    .map((r) => `<dt>${esc(t(`why.${r.kind}`))}</dt><dd>${esc(r.value)}</dd>`)
    .join('');
  const headingId = `offer-${o.id}`;
  li.setAttribute('aria-labelledby', headingId);
  li.innerHTML = `
    <div class="offer-head">
      <span class="offer-code" id="${esc(headingId)}">${esc(o.rule_name || o.offer_code)}</span>
      <span class="badge">${esc(o.offer_code)}</span>
      ${item.fresh ? `<span class="badge new">${esc(t('offers.new'))}</span>` : ''}
      <span class="score" title="${esc(t('why.score'))}">${esc(t('why.score'))} ${Number(o.score).toFixed(2)}</span>
    </div>
    <p class="offer-msg">${esc(o.message)}</p>
    <details class="why"><summary>${esc(t('offer.why'))}</summary><dl>${why}</dl></details>
    <div class="muted">${esc(t('offer.expires', { t: new Date(o.expires_at).toLocaleString(lang) }))}</div>`;
  const actions = document.createElement('div');
  actions.className = 'actions';
  if (item.answered) {
    actions.innerHTML = `<span class="status ${item.answered}">${esc(t(`offer.status.${item.answered}`))}</span>`;
  } else {
    const accept = btn(t('offer.accept'), 'primary accept', () => respond(item, 'accepted'));
    const decline = btn(t('offer.decline'), 'danger decline', () => toggleDecline(li, true));
    actions.append(accept, decline);
    const box = document.createElement('div');
    box.className = 'decline-box';
    box.hidden = !declineOpen;
    const selId = `reason-${o.id}`;
    box.innerHTML = `<div><label for="${esc(selId)}">${esc(t('offer.reason'))}</label>
      <select id="${esc(selId)}" class="reason">${REASONS.map((r) => `<option value="${r}">${esc(t(`reason.${r}`))}</option>`).join('')}</select></div>`;
    box.append(
      btn(t('offer.confirm'), 'danger confirm', () => respond(item, 'declined', box.querySelector('select').value)),
      btn(t('offer.cancel'), 'cancel', () => toggleDecline(li, false)),
    );
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') toggleDecline(li, false);
    });
    li.append(actions, box);
    return li;
  }
  li.append(actions);
  return li;
}

function toggleDecline(li, open) {
  const box = li.querySelector('.decline-box');
  box.hidden = !open;
  if (open) box.querySelector('select').focus();
  else li.querySelector('.decline')?.focus();
}

function btn(label, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

async function respond(item, outcome, reason) {
  try {
    await api(`/api/v1/recommendations/${encodeURIComponent(item.offer.id)}/response`, {
      method: 'POST',
      body: reason ? { outcome, reason } : { outcome },
    });
    item.answered = outcome;
    renderOffers();
    $('offers').querySelector(`[data-offer-id="${CSS.escape(item.offer.id)}"]`)?.focus();
  } catch (e) {
    if (e.status !== 401) say(t('error.generic', { msg: e.message }));
  }
}

applyStrings();
if (token) showDesk();
else showLogin();
