// npm run test:browser: the demo chat page (examples/chat) in headless
// Chromium, two users talking while the node is killed (SIGKILL) and started
// again; both pages must show every message once, in order. Screenshots go
// to test-output/ (or $TEST_OUTPUT_DIR).
//
// Needs Debian's chromium (/usr/bin/chromium, or $CHROMIUM) and the
// switchboard binary ($SWITCHBOARD_BIN, default <repo>/build/switchboard).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

import { serve } from '../../../examples/chat/serve.js';
import { Node, SECRET, api, sleep, uniqueRoom } from '../test/helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = resolve(process.env.TEST_OUTPUT_DIR ?? join(here, '..', 'test-output'));

async function launch(t) {
  const profile = mkdtempSync(join(tmpdir(), 'sb-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  t.after(async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return browser;
}

async function openChat(browser, site, user, room) {
  const page = await browser.newPage();
  await page.setViewport({ width: 760, height: 560 });
  page.on('pageerror', (err) => console.error(`[${user}] page error:`, err));
  await page.goto(`${site.url}/?user=${user}&room=${room}`);
  await page.waitForSelector('#state[data-state="connected"]', { timeout: 15000 });
  return page;
}

async function say(page, text) {
  await page.type('#input', text);
  await page.keyboard.press('Enter');
}

const texts = (page) => page.evaluate(() => window.chat.texts());

async function waitForTexts(page, expected, timeout = 20000) {
  const deadline = Date.now() + timeout;
  let got;
  while (Date.now() < deadline) {
    got = await texts(page);
    if (got.length >= expected.length) break;
    await sleep(100);
  }
  await sleep(300); // anything doubled would show up now
  return texts(page);
}

test('two pages keep the whole conversation across a node restart', { timeout: 120000 }, async (t) => {
  mkdirSync(OUT, { recursive: true });
  const site = await serve({ port: 0, node: '', secret: SECRET });
  t.after(() => site.close());
  const node = await new Node({
    http: { host: '127.0.0.1', port: 0, allowed_origins: [site.url] },
  }).start();
  t.after(() => node.cleanup());
  site.node = node.url;

  const browser = await launch(t);
  const room = uniqueRoom('demo');
  const alice = await openChat(browser, site, 'alice', room);
  const bob = await openChat(browser, site, 'bob', room);

  const expected = [];
  const turn = async (page, text) => {
    expected.push(text);
    await say(page, text);
    await sleep(150);
  };
  await turn(alice, 'Hi Bob!');
  await turn(bob, 'Hey Alice, how are you?');
  await turn(alice, 'Fine, the node is about to die though');
  await turn(bob, 'We will see about that');
  await waitForTexts(bob, expected);

  await node.kill9();
  await alice.waitForSelector('#state:not([data-state="connected"])', { timeout: 10000 });
  // Sent while the node is down: queued, then sent once it is back.
  await turn(alice, 'Are you still there?');
  await turn(bob, 'Yes, waiting for the node');
  assert.equal(await alice.$$eval('#outbox li', (l) => l.length), 1, 'alice\'s message waits in the outbox');
  await alice.screenshot({ path: join(OUT, 'chat-alice-offline.png') });
  await node.start();
  await alice.waitForSelector('#state[data-state="connected"]', { timeout: 20000 });
  await bob.waitForSelector('#state[data-state="connected"]', { timeout: 20000 });
  await turn(alice, 'Back again, nothing lost');
  await turn(bob, 'And nothing twice 🎉');

  // The two sent while the node was down may be stored in either order
  // (whichever page reconnected first): the order is the channel's.
  const { body } = await api(node, 'GET', `/api/history?channel=chat:${room}&limit=100`);
  const stored = body.events.filter((e) => e.type === 'message').map((e) => e.content);
  assert.deepEqual([...stored].sort(), [...expected].sort(), 'every message stored once');
  for (const [name, page] of [['alice', alice], ['bob', bob]]) {
    assert.deepEqual(await waitForTexts(page, stored), stored, `${name} sees every message once, in order`);
    assert.equal(await page.$$eval('#outbox li', (l) => l.length), 0, `${name}'s outbox is empty`);
  }

  // A reaction and a read receipt, visible on both pages (and in the screenshot).
  await bob.evaluate(() => window.chat.client.react(null, 1, '👍'));
  await alice.waitForFunction(() => document.querySelector('[data-id="1"] .reactions button')?.textContent.includes('👍 1'), { timeout: 5000 });
  await alice.waitForFunction(() => document.querySelector('.seen') !== null, { timeout: 5000 });
  // Alice deletes one of hers: both pages show it as deleted.
  const doomed = body.events.find((e) => e.content === 'Are you still there?').message_id;
  await alice.evaluate((id) => window.chat.client.deleteMessage(null, id), doomed);
  for (const page of [alice, bob]) {
    await page.waitForFunction((id) => document.querySelector(`[data-id="${id}"]`)?.classList.contains('deleted'), { timeout: 5000 }, doomed);
  }
  await alice.type('#input', 'typing…');
  await bob.waitForFunction(() => document.getElementById('typing').textContent.includes('Alice'), { timeout: 5000 });
  await bob.waitForFunction(() => document.getElementById('presence').children.length === 2, { timeout: 5000 });

  await alice.screenshot({ path: join(OUT, 'chat-alice.png') });
  await bob.screenshot({ path: join(OUT, 'chat-bob.png') });
  console.log(`screenshots in ${OUT}`);
});
