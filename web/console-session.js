// The console's session: the token from sign-in, who we are and what we may do, and the one
// way panels call the API. The server stays the authority on every call; `can` only decides
// which buttons a person sees, so nobody is offered what would be refused. It also holds the
// language: `t` is the translator of the one table in `i18n.js`, swapped by `setLang`.

import { call, ApiError } from './api.js';
import { pickLang, saveLang, translator } from './i18n.js';

const TOKEN_KEY = 'kairos.console.token';
const LANG_KEY = 'kairos.console.lang';

// Live bindings: modules that import `t` see the new translator after `setLang`.
export let lang = pickLang(null, LANG_KEY);
export let t = translator(lang);

export function setLang(next) {
  lang = next;
  t = translator(lang);
  saveLang(LANG_KEY, lang);
  applyStrings();
}

/// A code the API answers (a state, a status, a role) in words, or as it is when the table
/// has no words for it: a new code on the server never shows as a key.
export function label(prefix, code) {
  const key = `${prefix}.${code}`;
  const s = t(key);
  return s === key ? String(code) : s;
}

/// The page's fixed strings: `data-t` sets the text, `data-t-aria` the accessible name,
/// `data-t-placeholder` the placeholder.
export function applyStrings(root = document) {
  if (root === document) {
    document.documentElement.lang = lang;
    document.title = t('console.title');
  }
  for (const el of root.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  for (const el of root.querySelectorAll('[data-t-aria]')) el.setAttribute('aria-label', t(el.dataset.tAria));
  for (const el of root.querySelectorAll('[data-t-placeholder]')) el.placeholder = t(el.dataset.tPlaceholder);
}

export const session = { token: sessionStorage.getItem(TOKEN_KEY), me: null };
const signedOut = [];

export const $ = (id) => document.getElementById(id);

/// Called when the session ends or is refused, so the page goes back to the sign-in form.
export function onSignedOut(f) { signedOut.push(f); }

export async function api(path, opts = {}) {
  try {
    return await call('', path, { token: session.token, ...opts });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) endSession(t('console.sessionEnded'));
    throw e;
  }
}

export async function signIn(username, password) {
  const r = await call('', '/api/v1/auth/login', { method: 'POST', body: { username, password } });
  session.token = r.token;
  sessionStorage.setItem(TOKEN_KEY, r.token);
  return loadMe();
}

export async function loadMe() {
  session.me = await api('/api/v1/auth/me');
  return session.me;
}

export function endSession(message) {
  session.token = null;
  session.me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const f of signedOut) f(message);
}

export function can(permission) {
  return !!session.me && session.me.permissions.includes(permission);
}

/// Controls marked `data-perm` are disabled and hidden without the permission.
export function applyPermissions(root = document) {
  for (const el of root.querySelectorAll('[data-perm]')) {
    const ok = can(el.dataset.perm);
    el.disabled = !ok;
    if (el.tagName === 'TEXTAREA') el.readOnly = !ok;
    else el.hidden = !ok;
  }
}

let flashTimer = null;
/// A short message at the top of the page: what just happened, or why it did not.
export function flash(text, bad = false) {
  const el = $('flash');
  el.textContent = text;
  el.classList.toggle('bad', bad);
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

/// The error's message as the API worded it, for people.
export function said(e) {
  return (e && e.body && e.body.message) || String(e.message || e);
}
