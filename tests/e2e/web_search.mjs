// Drives the page served by `omnibind serve` in headless Chromium: waits for the status line, types a
// text query, presses Enter, waits for the result cards and checks the expected source is ranked
// first. Prints one JSON line (what was on screen); exit 0 = pass, 1 = fail, 77 = cannot run here.
//   node web_search.mjs URL "query text" "expected top source" [expected result count]
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

const [url, query, expected, count] = process.argv.slice(2);
const executablePath = process.env.OMNIBIND_CHROMIUM || '/usr/bin/chromium';
if (!url || !query || !expected) {
  console.error('usage: node web_search.mjs URL QUERY EXPECTED_TOP_SOURCE [COUNT]');
  process.exit(2);
}
if (!existsSync(executablePath)) {
  console.log(JSON.stringify({ skipped: `${executablePath} not found` }));
  process.exit(77);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let ok = false;
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  await page.goto(url, { timeout: 30000 });
  await page.waitForFunction(() => /items, dim/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
  const status = await page.textContent('#status');
  await page.fill('#text', query);
  await page.press('#text', 'Enter');
  await page.waitForSelector('#results .result', { timeout: 30000 });
  const cards = await page.$$eval('#results .result', cs => cs.map(c => ({
    id: c.dataset.id,
    score: parseFloat(c.querySelector('.score').textContent),
    modality: c.querySelector('.mod').textContent,
    source: c.querySelector('.src').textContent,
  })));
  const summary = await page.textContent('#summary');
  const query_items = await page.$$eval('#items .qi span', s => s.map(x => x.textContent));
  ok = cards.length > 0 && cards[0].source === expected && (!count || cards.length === parseInt(count)) &&
       query_items.includes('text: ' + query) && errors.length === 0;
  console.log(JSON.stringify({ ok, status, summary, query_items, cards, errors }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e) }));
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
