// The rule checks' problems in the console's language. The checks word them in English (as
// `kairos rules check` prints them); in another language each kind of problem is recognised
// by its wording and told from the string table (`console.chk.*`) with the names it carries.
// A problem of a kind the table does not know yet is shown with a lead-in in the language and
// the checks' own words, never dropped. File, line and column are the caller's, unchanged.

import { t, label, lang } from './console-session.js';

// `[kind, pattern, names of the captured parts]`, tried in order on the message.
const KINDS = [
  ['unknownEvent', /^event type "([^"]+)" is not in the event contract/, ['name']],
  ['notAttr', /^`([^`]+)` is not an attribute of ([^;]+)/, ['attr', 'types']],
  ['noProfileField', /^the profile has no field `([^`]+)`/, ['field']],
  ['nothingFills', /^nothing fills `\{([^}]+)\}`/, ['var']],
  ['syntax', /^syntax: ([\s\S]*)$/, ['detail']],
  ['unknownFunction', /^unknown function (\w+)\(\)/, ['name']],
  ['noFunction', /^there is no function ([\s\S]+)$/, ['sig']],
  ['notDefined', /^`([^`]+)` is not defined/, ['name']],
  ['missingField', /^missing field `([^`]+)`/, ['field']],
  ['unknownField', /^unknown field `([^`]+)`; the fields are: ([\s\S]*)$/, ['field', 'fields']],
  ['unknownChannel', /^unknown channel "([^"]+)"; configured channels: ([\s\S]*)$/, ['name', 'channels']],
  ['duplicateId', /^duplicate rule id "([^"]+)": also used in ([\s\S]*)$/, ['id', 'where']],
  ['badEventName', /^"([^"]+)" is not an event type/, ['name']],
  ['badId', /^id "([^"]+)" must be lowercase/, ['id']],
  ['neverHolds', /^`([^`]+)` is (text|a number|true or false) in the events this rule listens to, so `([^`]+)` never holds/, ['attr', 'kind', 'test']],
  ['noSuchTier', /^no customer has value tier "([^"]+)"/, ['tier']],
  ['activeBackwards', /^the rule's active period starts \(([^)]+)\) after it ends \(([^)]+)\)/, ['from', 'until']],
  ['activeEnded', /^the rule's active period ended on ([^:]+):/, ['until']],
];

// The checks' hints (`src/authoring/check.rs`), by their exact words.
const HINTS = {
  'Check this line and the one before it for a missing comma, quote, bracket or `;`.': 'syntax',
  'Use one of the built-in functions listed in docs/rules.md.': 'function',
  'Declare it in the rule as the message says, or correct the name.': 'declare',
  'Give each rule its own id.': 'duplicate',
  'Use one of the channels the message lists.': 'channel',
  'See docs/rules.md for the declaration fields, the event contract and the functions.': 'docs',
};

/// `{message, suggestion}` of a problem, in the console's language.
export function inWords(p) {
  if (lang === 'en') return { message: p.message, suggestion: p.suggestion };
  return { message: message(p.message), suggestion: p.suggestion && suggestion(p.suggestion) };
}

function message(m) {
  for (const [kind, re, names] of KINDS) {
    const found = m.match(re);
    if (!found) continue;
    const vars = Object.fromEntries(names.map((n, i) => [n, found[i + 1]]));
    if (vars.kind) vars.kind = label('console.chk.kind', vars.kind);
    return t(`console.chk.${kind}`, vars);
  }
  return t('console.chk.other', { msg: m });
}

function suggestion(s) {
  const mean = s.match(/^Did you mean ([\s\S]+)\?$/);
  if (mean) return t('console.chk.didYouMean', { name: mean[1] });
  return HINTS[s] ? t(`console.chk.hint.${HINTS[s]}`) : s;
}
