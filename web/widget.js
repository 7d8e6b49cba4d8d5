// The portal pop-up: shows the logged-in customer's offers as they arrive and reports the
// answer. Lives in a shadow root so the portal's styles and ours never meet.

import { call } from './api.js';
import { pickLang, saveLang, translator, otherLang } from './i18n.js';

const LANG_KEY = 'kairos.portal.lang';

/// Starts the widget. `token` is the portal session minted by the portal backend; `trigger`
/// (optional: `login`, `payment`, `service_change`) tells the engine why the customer is here.
/// Returns a handle with `close()`.
export function mount({ token, base, lang, trigger, onAnswer, container }) {
  if (!token) throw new Error('Kairos.portal: a token is required');
  const host = document.createElement('div');
  host.className = 'kairos-portal';
  (container || document.body).appendChild(host);
  const root = host.attachShadow({ mode: 'open' });
  const css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = `${base}/web/widget.css`;
  root.appendChild(css);
  const box = document.createElement('div');
  root.appendChild(box);

  let current = pickLang(lang, LANG_KEY);
  let t = translator(current);
  const queue = []; // offers waiting to be shown, oldest first
  const known = new Set();
  let shown = null; // the offer on screen
  let note = null; // a short confirmation after an answer
  let busy = false;

  const api = (path, body) =>
    call(base, `/api/v1/portal${path}`, { token, method: 'POST', body: body || {} });

  function render() {
    if (!shown && !note) {
      box.innerHTML = '';
      return;
    }
    const total = queue.length + (shown ? 1 : 0);
    box.innerHTML = '';
    const card = document.createElement('section');
    card.className = 'card';
    card.setAttribute('role', 'dialog');
    card.setAttribute('aria-modal', 'false');
    card.setAttribute('aria-labelledby', 'kp-title');
    card.tabIndex = -1;
    if (shown) card.dataset.offerId = shown.id;
    card.innerHTML = `
      <header>
        <h2 id="kp-title"></h2>
        <div class="tools">
          <button type="button" class="lang" aria-label="${t('lang.label')}"></button>
          <button type="button" class="close" aria-label="${t('pop.close')}">×</button>
        </div>
      </header>
      <p class="message" aria-live="polite"></p>
      <footer></footer>`;
    card.querySelector('h2').textContent = t('pop.title');
    card.querySelector('.lang').textContent = t('lang.switch');
    const msg = card.querySelector('.message');
    const foot = card.querySelector('footer');
    if (note) {
      msg.textContent = t(note);
      card.classList.add('note');
    } else {
      msg.textContent = shown.message;
      const accept = button(t('pop.accept'), 'primary accept', () => answer('accept'));
      const decline = button(t('pop.decline'), 'secondary decline', () => answer('decline'));
      foot.append(accept, decline);
      if (total > 1) {
        const count = document.createElement('span');
        count.className = 'count';
        count.textContent = t('pop.count', { n: 1, total });
        foot.append(count);
      }
    }
    card.querySelector('.close').addEventListener('click', () => close());
    card.querySelector('.lang').addEventListener('click', () => {
      current = otherLang(current);
      saveLang(LANG_KEY, current);
      t = translator(current);
      render();
      box.querySelector('.lang')?.focus();
    });
    box.appendChild(card);
    return card;
  }

  function button(label, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.textContent = label;
    b.addEventListener('click', onClick);
    return b;
  }

  function showNext() {
    if (shown || note) return;
    shown = queue.shift() || null;
    const card = render();
    if (shown) {
      // The customer has it in front of them now: the offer is delivered.
      api(`/offers/${encodeURIComponent(shown.id)}/seen`).catch(() => {});
      card.focus({ preventScroll: true });
    }
  }

  async function answer(action) {
    if (!shown || busy) return;
    busy = true;
    const offer = shown;
    try {
      await api(`/offers/${encodeURIComponent(offer.id)}/${action}`);
      note = action === 'accept' ? 'pop.thanks' : 'pop.declined';
      window.dispatchEvent(new CustomEvent('kairos:answer', { detail: { id: offer.id, action } }));
      if (onAnswer) onAnswer({ id: offer.id, action });
    } catch (e) {
      note = 'pop.error';
      queue.unshift(offer);
    } finally {
      busy = false;
    }
    shown = null;
    render()?.focus({ preventScroll: true });
    setTimeout(() => {
      note = null;
      render();
      showNext();
    }, 2500);
  }

  /// Closing without answering: recorded as dismissed so it does not pop up again.
  function close() {
    if (note) {
      note = null;
      render();
      showNext();
      return;
    }
    if (!shown) return;
    const offer = shown;
    shown = null;
    api(`/offers/${encodeURIComponent(offer.id)}/dismiss`).catch(() => {});
    render();
    showNext();
  }

  const onKey = (e) => {
    if (e.key === 'Escape' && (shown || note)) close();
  };
  document.addEventListener('keydown', onKey);

  // EventSource cannot send headers: the token goes in the query. It reconnects by itself
  // and sends Last-Event-ID, so only offers after the last one seen come again.
  const source = new EventSource(`${base}/api/v1/portal/stream?token=${encodeURIComponent(token)}`);
  source.addEventListener('offer', (e) => {
    const offer = JSON.parse(e.data);
    if (known.has(offer.id)) return;
    known.add(offer.id);
    queue.push(offer);
    showNext();
  });
  source.addEventListener('open', () => {
    if (trigger) {
      api('/touchpoints', { trigger }).catch(() => {});
      trigger = null;
    }
  });

  return {
    close() {
      source.close();
      document.removeEventListener('keydown', onKey);
      host.remove();
    },
    /// Tells the engine the customer just did something (`payment`, `service_change`).
    touch(what) {
      return api('/touchpoints', { trigger: what });
    },
  };
}
