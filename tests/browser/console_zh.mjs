// The console in Simplified Chinese: switch the language, read each panel in Chinese with no
// string key showing anywhere (text, labels, titles, placeholders), the built-in reference and
// a rule's problems included, reload and find the choice remembered, switch back to English.
// node console_zh.mjs <kairos-base> <marketer> <password>
//
// Reports PANEL <tab> <texts seen, |-separated> for each panel, LANG <html lang>, REFERENCE
// <the reference's description of count()>, CHECK <where>|<message>|<suggestion> for a rule
// listening to a misspelt event type, REMEMBERED <tab name after a reload>, ENGLISH <tab name
// after switching back>, REFERENCE_EN <count() described after switching back>.
import { say, withBrowser } from './lib.mjs';

const [base, user, password] = process.argv.slice(2);
if (!base || !user || !password) {
  console.error('usage: node console_zh.mjs <kairos-base> <marketer> <password>');
  process.exit(2);
}

/// Any `console.x` / `login.x` / `lang.x` key in the page's text or in the attributes people
/// read (accessible names, titles, placeholders, option labels): a string the table lacks.
async function rawKeys(p) {
  return p.evaluate(() => {
    const key = /\b(console|login|lang)\.[A-Za-z]/;
    const found = [];
    if (key.test(document.body.innerText)) found.push(`text: ${document.body.innerText.match(new RegExp(`.{0,40}${key.source}.{0,40}`))?.[0]}`);
    if (key.test(document.title)) found.push(`title: ${document.title}`);
    for (const el of document.querySelectorAll('*')) {
      for (const a of ['aria-label', 'title', 'placeholder', 'label']) {
        const v = el.getAttribute(a);
        if (v && key.test(v)) found.push(`${el.tagName.toLowerCase()}[${a}]: ${v}`);
      }
    }
    return found;
  });
}

const nav = (p) => p.getByRole('navigation');

await withBrowser('console_zh', async (p, shot) => {
  await p.goto(`${base}/console/`);
  await p.getByRole('button', { name: /Language/ }).click();
  // The sign-in form first: already in Chinese.
  await p.getByRole('heading', { name: '登录' }).waitFor();
  await p.getByLabel('用户名').fill(user);
  await p.getByLabel('密码').fill(password);
  await p.keyboard.press('Enter');
  await p.locator('#who').filter({ hasText: '营销人员' }).waitFor();
  say('LANG', await p.evaluate(() => document.documentElement.lang));

  // Each panel: what a Chinese reader sees, checked for keys once it has drawn.
  const panels = [
    ['规则', ['运行中的规则', '命中次数', '点击某条规则所在行，查看其每日转化率。'], '#rules-table tbody tr'],
    ['编辑器', ['规则文件', '保存草稿', '运行测试用例', '内置函数参考', '查找函数或字段', '尚未保存为草稿。', '没有问题',
      '状态函数：之前发生了什么', '辅助函数', '返回值', '价值等级的位次'], '#ed-status.good, #ref-filter'],
    ['采集与回测', ['采集实时事件', '开始采集', '开始回测', '还没有采集。'], '#cap-table tbody tr'],
    ['版本', ['草稿与版本', '已发布版本', '差异', '生效中'], '#versions-table tbody tr'],
    ['客户群', ['新建客户群', '添加条件', '全部条件', '价值等级', '等于', '保存客户群', '还没有客户群。'], '#seg-table tbody tr'],
    ['营销活动', ['策划营销活动', '优惠编码', '保存计划', '短信', '还没有营销活动。'], '#camp-table tbody tr'],
  ];
  for (const [tab, texts, drawn] of panels) {
    await nav(p).getByRole('button', { name: tab, exact: true }).click();
    for (const sel of drawn.split(', ')) await p.locator(sel).first().waitFor();
    const panel = p.locator('.tab:not([hidden])');
    const seen = [];
    for (const s of texts) {
      // Option labels are not visible text until the list opens: read them from the DOM.
      const inPanel = await panel.evaluate((el, s) => el.innerText.includes(s)
        || [...el.querySelectorAll('option, optgroup')].some((o) => (o.label || o.textContent).includes(s)), s);
      if (!inPanel) throw new Error(`${tab}: "${s}" is not shown`);
      seen.push(s);
    }
    const keys = await rawKeys(p);
    if (keys.length) throw new Error(`${tab}: string keys on the page: ${keys.join('; ')}`);
    say('PANEL', `${tab} ${seen.join('|')}`);
    await shot(tab);
  }

  // The reference tells a state function in Chinese.
  await nav(p).getByRole('button', { name: '编辑器', exact: true }).click();
  const count = p.locator('#reference tr[data-entry="count"] td').nth(1);
  say('REFERENCE', (await count.innerText()).trim());
  // A rule listening to a misspelt event type: the problem in Chinese, at its line.
  await p.locator('#ed-text').fill(`#{
    id: "zh-check", name: "Check", kind: "dynamic",
    events: ["location_updat"], channels: ["sms"],
    offer: #{ code: "NEW-OFFER", validity: "1d" },
    message: "Thank you",
    tests: [],
};
`);
  const problem = p.locator('#ed-problems li.error').first();
  await problem.filter({ hasText: 'location_updat' }).waitFor();
  const part = async (sel) => ((await problem.locator(sel).count()) ? (await problem.locator(sel).innerText()).trim() : '');
  say('CHECK', [await part('.where'), await part('.message'), await part('.suggestion')].join('|'));
  const keys = await rawKeys(p);
  if (keys.length) throw new Error(`editor: string keys on the page: ${keys.join('; ')}`);
  await shot('check');

  // Remembered: after a reload the console opens in Chinese.
  await p.reload();
  await nav(p).getByRole('button', { name: '客户群', exact: true }).waitFor();
  say('REMEMBERED', await nav(p).getByRole('button').first().textContent());
  if ((await rawKeys(p)).length) throw new Error('string keys after the reload');

  // And back.
  await p.getByRole('button', { name: /语言/ }).click();
  await nav(p).getByRole('button', { name: 'Segments', exact: true }).waitFor();
  say('ENGLISH', await nav(p).getByRole('button').first().textContent());
  // The reference is the guide's English again.
  await nav(p).getByRole('button', { name: 'Editor', exact: true }).click();
  await p.getByRole('heading', { name: 'Built-in reference' }).waitFor();
  await p.locator('#reference summary').filter({ hasText: 'State functions' }).waitFor();
  say('REFERENCE_EN', (await p.locator('#reference tr[data-entry="count"] td').nth(1).innerText()).trim());
});
