// Drives the operator console in Debian's chromium (playwright-core, no downloaded browser)
// against a running `dify-bridge serve`; prints one JSON object of findings for pytest
// (tests/browser/test_console.py) to assert on. Screenshots go to SHOTS.
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { BASE, ADMIN_KEY, DIFY_URL, SHOTS } = process.env;
const out = {};
// A fresh profile folder each run (playwright-core passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'console-chromium-')), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
const cspErrors = [];
page.on('console', (msg) => { if (/Content Security Policy/i.test(msg.text())) cspErrors.push(msg.text()); });
const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

async function api(key, model, content = 'hello') {
  const response = await fetch(`${BASE}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, code: body.error?.code ?? null, type: body.error?.type ?? null,
           content: body.choices?.[0]?.message?.content ?? null };
}

async function chat(model, text) {
  await page.goto(`${BASE}/console/playground`);
  await page.selectOption('#pg-model', model);
  await page.fill('#pg-input', text);
  await page.click('#pg-send');
  const answer = page.locator('.msg.assistant .answer').last();
  await answer.waitFor();
  await page.waitForFunction(() => document.getElementById('pg-total').textContent !== '–');
  return answer;
}

try {
  // Log in: a wrong key is refused with a message, the right one opens the overview.
  await page.goto(`${BASE}/console`);
  out.redirected_to_login = page.url().endsWith('/console/login');
  await page.fill('input[name=admin_key]', 'not-the-admin-key');
  await page.click('button[type=submit]');
  out.wrong_key_message = await page.locator('.error').textContent();
  await page.fill('input[name=admin_key]', ADMIN_KEY);
  await page.click('button[type=submit]');
  await page.waitForURL(`${BASE}/console`);
  out.overview_heading = await page.locator('h1').textContent();
  const cookies = await browser.cookies();
  out.session_cookie = cookies.filter((c) => c.name === 'bridge_console')
    .map((c) => ({ httpOnly: c.httpOnly, sameSite: c.sameSite }))[0] ?? null;

  // Models: add the emulator's Cat_LLM; it is in /v1/models at once.
  await page.goto(`${BASE}/console/models`);
  await page.fill('input[name=dify_url]', DIFY_URL);
  await page.fill('input[name=app_key]', 'app-cat-llm');
  await page.fill('input[name=id]', 'cat-console');
  await page.click('#add-model button[type=submit]');
  out.preview_text = await page.locator('section.card').first().textContent();
  await page.click('#save-model button[type=submit]');
  await page.waitForURL(`${BASE}/console/models`);
  out.saved_rows = await page.locator('#saved-models tbody').textContent();
  out.models_page_html = await page.content();
  await shot('models');
  const listed = await (await fetch(`${BASE}/v1/models`)).json();
  out.v1_models = (listed.data || []).map((m) => m.id);

  // Playground: 喵 streams in; the conversation id and usage are shown.
  const answer = await chat('cat-console', 'hello');
  out.playground_answer = await answer.textContent();
  out.playground_conversation = await page.locator('#pg-conversation').textContent();
  out.playground_usage = await page.locator('#pg-usage').textContent();
  await page.click('[data-copy-as=curl]');
  out.copy_curl = await page.locator('#pg-code').textContent();
  await shot('playground');

  // Keys: create, use, revoke, refused.
  await page.goto(`${BASE}/console/keys`);
  await page.fill('#create-key input[name=name]', 'ci-key');
  await page.click('#create-key button[type=submit]');
  const key = (await page.locator('#new-key').textContent()).trim();
  out.key_prefix = key.slice(0, 6);
  out.with_key = await api(key, 'cat-console');
  out.without_key = await api(null, 'cat-console');
  await page.goto(`${BASE}/console/keys`);
  out.key_shown_again = (await page.content()).includes(key);
  await page.locator('tr', { hasText: 'ci-key' }).locator('button', { hasText: 'Revoke' }).click();
  await page.waitForURL(`${BASE}/console/keys`);
  out.revoked_row = await page.locator('tr', { hasText: 'ci-key' }).textContent();
  out.after_revoke = await api(key, 'cat-console');

  // A budget of 1 token a day: the first request uses it up, the next ones get 429.
  await page.fill('#create-key input[name=name]', 'tiny-budget');
  await page.fill('#create-key input[name=budget_tokens]', '1');
  await page.click('#create-key button[type=submit]');
  const tiny = (await page.locator('#new-key').textContent()).trim();
  out.budget_first = await api(tiny, 'cat-console');
  let refused = null;
  for (let i = 0; i < 40 && !refused; i++) {
    const result = await api(tiny, 'cat-console');
    if (result.status === 429) refused = result;
    else await new Promise((r) => setTimeout(r, 250));
  }
  out.budget_refused = refused;
  await page.goto(`${BASE}/console/keys`);
  await shot('keys');

  // Requests: the key's requests are in the log, filterable.
  await page.goto(`${BASE}/console/requests`);
  await page.fill('input[name=key_name]', 'tiny-budget');
  await page.waitForFunction(() => [...document.querySelectorAll('#rows tr')].every((r) => r.textContent.includes('tiny-budget')));
  out.request_rows = await page.locator('#rows').textContent();
  await shot('requests');

  // A Dify answer with HTML is shown as text.
  if (process.env.HTML_APP_KEY) {
    await page.goto(`${BASE}/console/models`);
    await page.fill('input[name=dify_url]', DIFY_URL);
    await page.fill('input[name=app_key]', process.env.HTML_APP_KEY);
    await page.fill('input[name=id]', 'html-answer');
    await page.click('#add-model button[type=submit]');
    await page.click('#save-model button[type=submit]');
    await page.waitForURL(`${BASE}/console/models`);
    const html = await chat('html-answer', 'hi');
    out.html_answer_text = await html.textContent();
    out.html_answer_elements = await html.locator('script, img').count();
    out.html_pwned = await page.evaluate(() => window.pwned ?? null);
  }

  await page.goto(`${BASE}/console/connect`);
  out.connect_text = await page.locator('main').textContent();
  await shot('connect');
  await page.goto(`${BASE}/console`);
  await page.waitForFunction(() => document.querySelector('#chart-requests canvas') !== null);
  out.overview_models = await page.locator('table').first().textContent();
  out.requests_per_minute = await page.locator('[data-live=requests_per_minute]').textContent();
  await shot('overview');
  out.csp_errors = cspErrors;
} catch (error) {
  out.error = String(error.stack || error);
  await shot('failure').catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
