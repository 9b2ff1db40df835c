// Debian's Chromium driven by playwright-core (which never downloads a browser).

import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { PASSWORD, freePort } from './server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    // As root (CI) Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

// A context that answers the Basic challenge (or not), and records what the page does: every
// request, console errors, page errors.
export async function openContext(browser, { credentials = true, viewport = DESKTOP, isMobile = false } = {}) {
  const context = await browser.newContext({
    viewport,
    isMobile,
    // The tests read numbers as the page formats them for this locale.
    locale: 'en-US',
    hasTouch: isMobile,
    deviceScaleFactor: 1,
    ...(credentials ? { httpCredentials: { username: 'admin', password: PASSWORD } } : {}),
  });
  const record = { requests: [], consoleErrors: [], pageErrors: [] };
  context.on('request', (request) => record.requests.push(request.url()));
  context.on('console', (message) => {
    if (message.type() === 'error') record.consoleErrors.push(message.text());
  });
  context.on('weberror', (error) => record.pageErrors.push(String(error.error())));
  return { context, record };
}

// Bytes as received on the wire (compressed bodies plus headers), per URL, from the DevTools
// protocol's Network.loadingFinished. The event stream never finishes, so it is not counted.
export async function measureTransfer(page) {
  const client = await page.context().newCDPSession(page);
  await client.send('Network.enable');
  const urls = new Map();
  const sizes = new Map();
  client.on('Network.responseReceived', (event) => urls.set(event.requestId, { url: event.response.url, encoding: event.response.headers['content-encoding'] ?? event.response.headers['Content-Encoding'] ?? '' }));
  client.on('Network.loadingFinished', (event) => {
    const info = urls.get(event.requestId);
    if (info) sizes.set(info.url, { bytes: event.encodedDataLength, encoding: info.encoding });
  });
  return { sizes, total: () => [...sizes.values()].reduce((sum, s) => sum + s.bytes, 0) };
}

export { freePort };
