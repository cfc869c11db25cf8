// examples/legacy-ws-im in a real browser: two headless Chromium users on the example's page (a
// raw WebSocket client with text pings and exponential-backoff reconnects) chat through
// wsbridge's relay with a socket.io-client user on the translate-down route; wsbridge answers
// the pages' pings; a wsbridge restart drops everyone and the pages come back by themselves.
// Screenshots go to $WSB_BUILD_DIR.
'use strict';

const h = require('./lib/harness');
const {startLegacyIm} = require('./lib/legacy_ws_im');
const {launch, newUserPage, texts, waitForText, screenshot} = require('./lib/browser');
const {io} = require('socket.io-client');

const {assert} = h;

const logLine = (page, text) => page.locator('#log li', {hasText: text}).waitFor();

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

h.test('two browser users and a socket.io user chat through wsbridge; text pings answered by ' +
           'wsbridge; after a wsbridge restart the pages reconnect with backoff', async (t) => {
  const {server, bridge, start, base} = await startLegacyIm();
  const browser = await launch();
  // Pings every 200 ms so a few go by; the first reconnect waits 1 s, time for the restart.
  const open = async (user) => {
    const page = await newUserPage(browser, `http://127.0.0.1:${server.port}/?user=${user}` +
                                            '&ping=200&backoff=1000');
    await page.click('#connect');
    await logLine(page, `connected as ${user}`);
    return page;
  };
  const alice = await open('alice');
  const bob = await open('bob');
  const carol = io(base, {forceNew: true, query: {user: 'carol'}});
  h.defer(() => carol.disconnect());
  const carolHeard = [];
  carol.on('chat', (d) => carolHeard.push(`${d.from}: ${d.text}`));
  await h.once(carol, 'welcome');
  await waitForText(alice, '#online', 'alice, bob, carol');

  await say(alice, 'hi from alice');
  await logLine(bob, 'alice: hi from alice');
  await say(bob, 'hi from bob');
  await logLine(alice, 'bob: hi from bob');
  carol.emit('chat', {text: 'hi from socket.io'});
  await Promise.all([logLine(alice, 'carol: hi'), logLine(bob, 'carol: hi')]);
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => Number(document.getElementById('pongs').textContent) >= 3);
  }

  // wsbridge restarts: the pages hear 1001, wait 1 s (backoff) and reconnect to the new one.
  await bridge.stop();
  await start();
  await Promise.all([logLine(alice, 'reconnecting'), logLine(bob, 'reconnecting')]);
  await Promise.all([waitForText(alice, '#status', 'online'), waitForText(bob, '#status', 'online')]);
  await say(bob, 'bob is back');
  await logLine(alice, 'bob: bob is back');

  assert.deepEqual(await texts(alice, '#log li'), [
    'connected as alice', 'me: hi from alice', 'bob: hi from bob', 'carol: hi from socket.io',
    'closed 1001', 'reconnecting in 1000 ms', 'connected as alice', 'bob: bob is back',
  ]);
  assert.deepEqual(await texts(bob, '#log li'), [
    'connected as bob', 'alice: hi from alice', 'me: hi from bob', 'carol: hi from socket.io',
    'closed 1001', 'reconnecting in 1000 ms', 'connected as bob', 'me: bob is back',
  ]);
  assert.deepEqual(carolHeard.slice(0, 2), ['alice: hi from alice', 'bob: hi from bob']);
  // Every page ping was answered by wsbridge; none reached the server.
  assert.deepEqual(server.lines.filter((o) => o.event === 'text-ping'), []);
  assert.ok(server.lines.filter((o) => o.event === 'connection').every((o) => o.via ===
                                                                          'wsbridge'));
  t.log(`screenshots: ${await screenshot(alice, 'example_legacy_ws_im_alice')}, ` +
        `${await screenshot(bob, 'example_legacy_ws_im_bob')}`);
}, {timeout: 60000});
