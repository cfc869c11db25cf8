// Headless Chromium for the example pages (playwright-core driving Debian's /usr/bin/chromium):
// one browser per case, closed when the case ends, and a screenshot helper that writes under
// $WSB_BUILD_DIR (the ctest build directory; the temp dir when run by hand).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const CHROMIUM = '/usr/bin/chromium';

async function launch() {
  if (!fs.existsSync(CHROMIUM)) throw new h.Skip(`no ${CHROMIUM}`);
  const {chromium} = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  h.defer(() => browser.close());
  return browser;
}

// A page in a context of its own (its own cookies and storage: another user).
async function newUserPage(browser, url) {
  const context = await browser.newContext({viewport: {width: 900, height: 700}});
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

// The text of every `selector` element, in document order.
function texts(page, selector) {
  return page.$$eval(selector, (els) => els.map((e) => e.textContent));
}

// Waits until an element matching `selector` has exactly `text`.
async function waitForText(page, selector, text, ms = 10000) {
  await page.waitForFunction(([sel, want]) => [...document.querySelectorAll(sel)].some(
      (e) => e.textContent === want), [selector, text], {timeout: ms});
}

async function screenshot(page, name) {
  const dir = process.env.WSB_BUILD_DIR || os.tmpdir();
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({path: file, fullPage: true});
  return file;
}

module.exports = {launch, newUserPage, texts, waitForText, screenshot};
