import { existsSync } from 'fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (apt-get install chromium), which .ci/run installs when missing. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** True when the browser tests can run; they are skipped (not passed) otherwise. */
export const hasChromium = existsSync(CHROMIUM_PATH);

/** Headless Chromium through playwright-core (which downloads no browser of its own). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
