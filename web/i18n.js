// Strings for the portal widget and the agent desktop, in English and Simplified Chinese.
// One table so both pages say the same thing the same way; keys missing in a language fall
// back to English rather than showing a key.

const STRINGS = {
  en: {
    'lang.name': 'English',
    'lang.switch': '中文',
    'lang.label': 'Language',
    // Portal widget
    'pop.title': 'A special offer for you',
    'pop.accept': 'Yes, I want it',
    'pop.decline': 'No, thanks',
    'pop.close': 'Close',
    'pop.thanks': 'Thank you! We have received your answer.',
    'pop.declined': 'Understood. We will not show this offer again.',
    'pop.count': '{n} of {total}',
    'pop.error': 'Something went wrong. Please try again.',
    // Agent desktop
    'desk.title': 'Agent desktop',
    'desk.product': 'Kairos',
    'login.heading': 'Sign in',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.failed': 'Wrong username or password.',
    'login.signout': 'Sign out',
    'open.label': 'Mobile number or customer ID',
    'open.placeholder': 'e.g. 8613900000001',
    'open.submit': 'Open customer',
    'open.notfound': 'No customer found for {q}.',
    'open.nolines': 'This customer has no lines.',
    'open.prompt': 'Open a customer to see who they are and what to offer them.',
    'sum.heading': 'Customer',
    'sum.msisdn': 'Number',
    'sum.plan': 'Plan',
    'sum.tier': 'Value tier',
    'sum.churn': 'Churn risk',
    'sum.arpu': 'Monthly spend',
    'sum.segment': 'Segment',
    'sum.language': 'Language',
    'sum.type': 'Type',
    'offers.heading': 'Next best offers',
    'offers.none': 'No open offers for this customer right now.',
    'offers.live': 'Live',
    'offers.new': 'New',
    'offer.code': 'Offer',
    'offer.why': 'Why this offer',
    'offer.accept': 'Accept',
    'offer.decline': 'Decline',
    'offer.reason': 'Reason',
    'offer.confirm': 'Confirm decline',
    'offer.cancel': 'Cancel',
    'offer.status.accepted': 'Accepted',
    'offer.status.declined': 'Declined',
    'offer.expires': 'Valid until {t}',
    'why.rule': 'Rule',
    'why.description': 'Rule says',
    'why.priority': 'Priority',
    'why.category': 'Category',
    'why.campaign': 'Campaign',
    'why.trigger': 'Triggered by event',
    'why.score': 'Score',
    'reason.price': 'Too expensive',
    'reason.not_interested': 'Not interested',
    'reason.already_has': 'Already has it',
    'reason.call_back_later': 'Call back later',
    'reason.other': 'Other',
    'error.generic': 'Something went wrong ({msg}).',
    'error.session': 'Your session has ended. Please sign in again.',
  },
  'zh-CN': {
    'lang.name': '中文',
    'lang.switch': 'English',
    'lang.label': '语言',
    'pop.title': '为您准备的专属优惠',
    'pop.accept': '好的，我要办理',
    'pop.decline': '不用了，谢谢',
    'pop.close': '关闭',
    'pop.thanks': '谢谢！我们已收到您的回复。',
    'pop.declined': '好的，我们不会再向您展示此优惠。',
    'pop.count': '第 {n} 个，共 {total} 个',
    'pop.error': '出了点问题，请稍后再试。',
    'desk.title': '坐席工作台',
    'desk.product': 'Kairos',
    'login.heading': '登录',
    'login.username': '用户名',
    'login.password': '密码',
    'login.submit': '登录',
    'login.failed': '用户名或密码错误。',
    'login.signout': '退出登录',
    'open.label': '手机号码或客户编号',
    'open.placeholder': '例如 8613900000001',
    'open.submit': '打开客户',
    'open.notfound': '未找到客户：{q}。',
    'open.nolines': '该客户没有号码。',
    'open.prompt': '打开一个客户，查看客户概况和推荐的优惠。',
    'sum.heading': '客户',
    'sum.msisdn': '号码',
    'sum.plan': '套餐',
    'sum.tier': '价值等级',
    'sum.churn': '流失风险',
    'sum.arpu': '月均消费',
    'sum.segment': '客户群',
    'sum.language': '语言',
    'sum.type': '类型',
    'offers.heading': '最佳推荐',
    'offers.none': '该客户目前没有待处理的优惠。',
    'offers.live': '实时',
    'offers.new': '新',
    'offer.code': '优惠',
    'offer.why': '推荐理由',
    'offer.accept': '接受',
    'offer.decline': '拒绝',
    'offer.reason': '原因',
    'offer.confirm': '确认拒绝',
    'offer.cancel': '取消',
    'offer.status.accepted': '已接受',
    'offer.status.declined': '已拒绝',
    'offer.expires': '有效期至 {t}',
    'why.rule': '规则',
    'why.description': '规则说明',
    'why.priority': '优先级',
    'why.category': '类别',
    'why.campaign': '营销活动',
    'why.trigger': '触发事件',
    'why.score': '评分',
    'reason.price': '价格太高',
    'reason.not_interested': '不感兴趣',
    'reason.already_has': '已经办理',
    'reason.call_back_later': '稍后回电',
    'reason.other': '其他',
    'error.generic': '出错了（{msg}）。',
    'error.session': '登录已过期，请重新登录。',
  },
};

export const LANGS = Object.keys(STRINGS);

/// The language to start in: an explicit choice, the one saved last time, else the browser's.
export function pickLang(explicit, storageKey) {
  const saved = storageKey ? safeGet(storageKey) : null;
  for (const cand of [explicit, saved, ...(navigator.languages || [navigator.language])]) {
    if (!cand) continue;
    if (STRINGS[cand]) return cand;
    if (cand.toLowerCase().startsWith('zh')) return 'zh-CN';
    if (cand.toLowerCase().startsWith('en')) return 'en';
  }
  return 'en';
}

export function saveLang(storageKey, lang) {
  try { localStorage.setItem(storageKey, lang); } catch { /* private mode: not remembered */ }
}

function safeGet(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

/// `t(key, {name: value})` in `lang`.
export function translator(lang) {
  const table = STRINGS[lang] || STRINGS.en;
  return (key, vars = {}) => {
    const s = table[key] ?? STRINGS.en[key] ?? key;
    return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
  };
}

/// The other language, for a two-way switch.
export function otherLang(lang) {
  return lang === 'en' ? 'zh-CN' : 'en';
}
