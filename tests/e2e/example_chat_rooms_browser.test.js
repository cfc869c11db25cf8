// examples/chat-rooms in a real browser: two headless Chromium users on the example's page (the
// standard socket.io client, served by the example's web.js) log in through the demo login
// service, start on long-polling across origins and upgrade to websocket, land on the two server
// processes, and chat in a room and privately through wsbridge. Screenshots go to $WSB_BUILD_DIR.
'use strict';

const h = require('./lib/harness');
const {startChatRooms} = require('./lib/chat_rooms');
const {launch, newUserPage, texts, waitForText, screenshot} = require('./lib/browser');

const {assert} = h;

async function login(page, user) {
  await page.fill('#user', user);
  await page.click('#login');
  await page.locator('#log li', {hasText: `logged in as ${user} on server`}).waitFor();
  await waitForText(page, '#transport', 'websocket');  // polling first, then the upgrade
}

const log = (page) => texts(page, '#log li');

h.test('two browser users on different server processes chat in a room and privately',
       async (t) => {
  const {web, servers} = await startChatRooms({web: true});
  const browser = await launch();
  const url = `http://127.0.0.1:${web.port}/`;
  const alice = await newUserPage(browser, url);
  const bob = await newUserPage(browser, url);
  await login(alice, 'alice');
  await login(bob, 'bob');

  await alice.click('#join');
  await alice.locator('#log li', {hasText: 'joined lobby'}).waitFor();
  // Bob hears alice's private word after her seat update went by (see the Node test), then joins.
  await alice.fill('#to', 'bob');
  await alice.fill('#ptext', 'join lobby?');
  await alice.click('#psend');
  await bob.locator('#log li', {hasText: 'private from alice'}).waitFor();
  await bob.click('#join');
  await bob.locator('#log li', {hasText: 'joined lobby'}).waitFor();
  await waitForText(alice, '#seats', 'alice, bob');

  await alice.fill('#text', 'hello bob');
  await alice.click('#send');
  await bob.locator('#log li', {hasText: '[lobby] alice: hello bob'}).waitFor();
  await bob.fill('#text', 'hi alice');
  await bob.click('#send');
  await alice.locator('#log li', {hasText: '[lobby] bob: hi alice'}).waitFor();
  await bob.locator('#log li', {hasText: '[lobby] bob: hi alice'}).waitFor();

  const aliceLog = await log(alice);
  const bobLog = await log(bob);
  const serverOf = (lines) => /on server (\w)$/.exec(lines[1])[1];
  assert.deepEqual([serverOf(aliceLog), serverOf(bobLog)].sort(), ['a', 'b']);
  assert.deepEqual(aliceLog, [
    'connected (polling)', `logged in as alice on server ${serverOf(aliceLog)}`,
    'seats lobby: alice', 'joined lobby',
    'private to bob: join lobby?',
    'seats lobby: alice, bob',
    '[lobby] alice: hello bob', '[lobby] bob: hi alice',
  ]);
  assert.deepEqual(bobLog, [
    'connected (polling)', `logged in as bob on server ${serverOf(bobLog)}`,
    'private from alice: join lobby?',
    'seats lobby: alice, bob', 'joined lobby',
    '[lobby] alice: hello bob', '[lobby] bob: hi alice',
  ]);
  // Both pages polled across origins (page on web.js, socket.io on wsbridge) and upgraded.
  for (const s of servers) {
    assert.deepEqual(s.lines.filter((o) => o.event === 'connection_error'), []);
  }
  const serverNamed = (name) => servers.find((s) => s.info.server === name);
  await serverNamed(serverOf(aliceLog)).waitFor((o) => o.event === 'upgrade');  // logs may trail
  await serverNamed(serverOf(bobLog)).waitFor((o) => o.event === 'upgrade');
  assert.deepEqual(servers.flatMap((s) => s.lines.filter((o) => o.event === 'upgrade'))
                       .map((o) => o.user).sort(), ['alice', 'bob']);
  t.log(`screenshots: ${await screenshot(alice, 'example_chat_rooms_alice')}, ` +
        `${await screenshot(bob, 'example_chat_rooms_bob')}`);
}, {timeout: 60000});
