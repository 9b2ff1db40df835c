// `npm run screenshots`: regenerates the README's picture of the home page,
// web/screenshots/home.png (1280×800), from a fresh server with a day of a dozen cities.
// Uses the same binary and Chromium as the tests (STATION_API_BIN, CHROMIUM_PATH).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DESKTOP, launch, openContext } from './support/browser.js';
import { showcase } from './support/data.js';
import { StationServer, WEB_DIR } from './support/server.js';

const out = join(WEB_DIR, 'screenshots', 'home.png');
const server = await new StationServer().start();
let browser;
try {
  await server.api().postMany(showcase(Math.floor(Date.now() / 1000)));
  browser = await launch();
  const { context, record } = await openContext(browser, { viewport: DESKTOP });
  const page = await context.newPage();
  await page.goto(`${server.origin}/home/#station=Oslo`);
  await page.locator('#connection[data-state="open"]').waitFor();
  await page.locator('#chart canvas').first().waitFor();
  await page.waitForTimeout(1000); // the outline and the chart's first frame
  if (record.consoleErrors.length) throw new Error(`console errors: ${record.consoleErrors.join('\n')}`);
  mkdirSync(join(WEB_DIR, 'screenshots'), { recursive: true });
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser?.close();
  await server.dispose();
}
