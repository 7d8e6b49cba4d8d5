// The built-in function reference beside the editor, read from the rules guide compiled into
// the binary (`/web/rules.md`), so its functions and fields are always the running release's.
// Only the sections a rule writer looks up while typing are shown, with a filter.
//
// The guide is English (it is the product's documentation). In another language the entries
// are told in that language's words from the string table (`console.ref.*`): each section's
// title and introduction, the tables' headings, and each function's or field's description,
// found by its name; an entry the table does not know yet keeps the guide's English, so a
// function added to the guide never goes missing.

import { esc } from './api.js';
import { t, label, lang } from './console-session.js';

const SECTIONS = ['Event fields and profile fields', 'State functions', 'Helper functions', 'Time: windows'];
let md = null;
let drawn = null; // the language the reference was drawn in

export async function renderReference(el) {
  if (!md) md = fetch('/web/rules.md').then((r) => r.text());
  const text = await md;
  if (drawn === lang) return;
  drawn = lang;
  const english = lang === 'en';
  const parts = text.split(/^## /m).slice(1)
    .map((p) => [SECTIONS.findIndex((s) => p.startsWith(s)), p])
    .filter(([i]) => i >= 0);
  const query = el.querySelector('#ref-filter')?.value || '';
  el.querySelector('label[for="ref-filter"]')?.remove();
  el.querySelector('#ref-filter')?.remove();
  for (const d of el.querySelectorAll('details')) d.remove();
  el.insertAdjacentHTML('beforeend', `<label for="ref-filter">${esc(t('console.ref.filter'))}</label>
    <input id="ref-filter" type="search" autocomplete="off">
    ${parts.map(([i, p]) => {
      const [title, ...rest] = p.split('\n');
      const heading = english ? title : t(`console.ref.section.${i}`);
      return `<details open data-section="${i}"><summary>${esc(heading)}</summary>${render(rest.join('\n'), english, i)}</details>`;
    }).join('')}`);
  const filter = el.querySelector('#ref-filter');
  const apply = () => {
    const q = filter.value.trim().toLowerCase();
    for (const tr of el.querySelectorAll('tbody tr')) tr.hidden = q && !tr.textContent.toLowerCase().includes(q);
  };
  filter.value = query;
  filter.addEventListener('input', apply);
  apply();
}

/// The name an entry is found by in the string table: its first cell without quotes or
/// arguments (`count(type, window)` -> `count`, `event.id`, `power_on / power_off`).
const entryName = (cell) => cell.replace(/`/g, '').replace(/\([^)]*\)/g, '').trim();

/// Just enough Markdown for the guide: `###` headings, tables, paragraphs, inline code. Out of
/// English, a section's paragraphs give way to its introduction in the language, headings and
/// descriptions are translated where the table has them.
function render(md, english, section) {
  const inline = (s) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>').replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
  const out = english ? [] : [`<p>${inline(t(`console.ref.intro.${section}`))}</p>`];
  for (const block of md.split(/\n{2,}/)) {
    const lines = block.trim().split('\n');
    if (!lines[0]) continue;
    if (lines[0].startsWith('### ')) {
      const h = lines[0].slice(4);
      out.push(`<h3>${inline(english ? h : label('console.ref.h', h))}</h3>`);
      lines.shift();
      if (!lines.length) continue;
    }
    if (lines[0].startsWith('|')) {
      const cells = (l) => l.replace(/^\||\|$/g, '').split(/(?<!\\)\|/).map((c) => c.trim());
      const [head, , ...rows] = lines;
      const th = cells(head).map((c) => (english ? c : label('console.ref.col', c)));
      out.push(`<table><thead><tr>${th.map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead><tbody>${
        rows.map((r) => {
          const cs = cells(r);
          const name = entryName(cs[0]);
          if (!english) {
            // The description is the second cell (the third, a default, stays as written).
            const said = label('console.ref.entry', name);
            if (said !== name && cs.length > 1) cs[1] = said;
          }
          return `<tr data-entry="${esc(name)}">${cs.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`;
        }).join('')}</tbody></table>`);
    } else if (lines[0].startsWith('```')) {
      out.push(`<pre>${esc(lines.slice(1, -1).join('\n'))}</pre>`);
    } else if (english) {
      out.push(`<p>${inline(lines.join(' '))}</p>`);
    }
  }
  return out.join('');
}
