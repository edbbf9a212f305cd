// Drives the page's localisation view in headless Chromium (the page served by `omnibind serve` with a
// model bundle). Two flows:
//  1. upload a picture, build a composed query (typed text + an uploaded sound − typed text), locate;
//  2. search pictures by text, press "locate here" on the first image result, locate the text in it.
// Prints one JSON line with what was on screen (boxes, summaries, the formula, how much of the heatmap
// canvas was painted); exit 0 = both flows showed boxes without page errors, 1 = fail, 77 = cannot run.
//   node web_locate.mjs URL PICTURE.png "query text" SOUND.wav "subtracted text" "picture search text"
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

const [url, picture, text, sound, minus, search] = process.argv.slice(2);
const executablePath = process.env.OMNIBIND_CHROMIUM || '/usr/bin/chromium';
if (!url || !picture || !text || !sound || !minus || !search) {
  console.error('usage: node web_locate.mjs URL PICTURE TEXT SOUND MINUS_TEXT SEARCH_TEXT');
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

// What the localisation view shows once a located answer is drawn.
async function shown(page) {
  await page.waitForSelector('#locBoxes .box', { timeout: 120000 });
  await page.waitForSelector('#locCanvas[data-drawn="1"]', { timeout: 30000 });
  return page.evaluate(() => {
    const cv = document.getElementById('locCanvas'), img = document.getElementById('locImg');
    const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ++painted;
    return {
      picture: document.getElementById('locName').textContent,
      summary: document.getElementById('locSummary').textContent,
      error: document.getElementById('locError').textContent,
      boxes: [...document.querySelectorAll('#locBoxes .box')].map(b => ({
        x: +b.dataset.x, y: +b.dataset.y, w: +b.dataset.w, h: +b.dataset.h, score: +b.dataset.score })),
      image: { natural: [img.naturalWidth, img.naturalHeight], shown: [img.clientWidth, img.clientHeight] },
      canvas: [cv.width, cv.height],
      painted: painted / Math.max(1, cv.width * cv.height),
    };
  });
}

let ok = false;
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  await page.goto(url, { timeout: 30000 });
  await page.waitForFunction(() => /items, dim/.test(document.getElementById('status').textContent), null, { timeout: 30000 });

  // 1. upload + composed query
  await page.setInputFiles('#locFile', picture);
  await page.waitForFunction(() => /^uploaded: /.test(document.getElementById('locName').textContent), null, { timeout: 30000 });
  await page.fill('#text', text);
  await page.click('#addText');
  await page.setInputFiles('#file', sound);
  await page.waitForFunction(() => document.querySelectorAll('#items .qi').length === 2, null, { timeout: 30000 });
  await page.fill('#text', minus);
  await page.click('#subText');
  const items = await page.$$eval('#items .qi', qs => qs.map(q => ({
    sign: q.querySelector('.sign').textContent, label: q.querySelector('.label').textContent })));
  const formula = await page.textContent('#formula');
  await page.click('#locate');
  const uploaded = await shown(page);
  // OMNIBIND_E2E_SCREENSHOT=FILE.png: what the page looked like (for a person to check the drawing).
  if (process.env.OMNIBIND_E2E_SCREENSHOT) await page.screenshot({ path: process.env.OMNIBIND_E2E_SCREENSHOT, fullPage: true });

  // 2. choose a picture from the search results
  await page.click('#clear');
  await page.selectOption('#modality', 'image');
  await page.fill('#text', search);
  await page.press('#text', 'Enter');
  await page.waitForSelector('#results .result .locHere', { timeout: 60000 });
  const chosen_id = await page.$eval('#results .result', c => c.dataset.id);
  await page.click('#results .result .locHere');
  await page.waitForFunction(() => /^item /.test(document.getElementById('locName').textContent), null, { timeout: 30000 });
  await page.click('#locate');
  const chosen = await shown(page);

  ok = errors.length === 0 && uploaded.boxes.length > 0 && chosen.boxes.length > 0 && !uploaded.error && !chosen.error;
  console.log(JSON.stringify({ ok, items, formula, uploaded, chosen_id, chosen, errors }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e) }));
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
