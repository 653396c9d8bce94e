// SPDX-License-Identifier: MIT
// Opens a `faultline html` page in Debian's headless Chromium (driven by playwright-core, never a
// downloaded browser) and prints what the page shows as JSON: console errors, what the charts drew,
// and the numbers in the page.  Saves a screenshot.  usage: node html_check.js PAGE.html SHOT.png
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const { chromium } = require("playwright-core");

(async () => {
  const [page_path, shot] = process.argv.slice(2);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "faultline-chromium-"));
  // a new profile directory each run (playwright passes it as --user-data-dir)
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
           "--disable-component-update", "--disable-sync"],
  });
  const errors = [], requests = [];
  try {
    const page = await browser.newPage();
    page.on("console", m => { if (m.type() === "error" || m.type() === "warning") errors.push(m.type() + ": " + m.text()); });
    page.on("pageerror", e => errors.push("pageerror: " + e.message));
    page.on("request", r => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
    const t0 = Date.now();
    await page.goto("file://" + path.resolve(page_path), { waitUntil: "load" });
    await page.waitForSelector("body[data-ready='1']", { timeout: 20000 });
    const load_ms = Date.now() - t0;
    const seen = await page.evaluate(() => {
      const q = s => document.querySelector(s);
      const n = s => document.querySelectorAll(s).length;
      const attr = (s, a) => q(s) ? q(s).getAttribute(a) : null;
      return {
        rss_paths: n("#rss-svg path.series"),
        rss_nonempty: [...document.querySelectorAll("#rss-svg path.series")].filter(p => p.getBBox().height > 0).length,
        fault_bars: n("#fault-svg rect.fbar"),
        peak_bytes: attr("#peak-rss .v", "data-bytes"),
        total_faults: attr("#total-faults .v", "data-count"),
        processes: attr("#process-count .v", "data-count"),
        peak_sum: attr("#peak-sum", "data-bytes"),
        region_rows: n("#regions tr") - 2,
        region_total: attr("#regions-total th:nth-child(4)", "data-count"),
        tree_items: n("#tree li.proc"),
        lost: q("#lost") ? q("#lost").textContent : null,
        // the breakdown at the peak, row by row, as the page shows it (compared with `why --format json`)
        why_rows: [...document.querySelectorAll("#why-table tr[data-rank], #why-other")].map(tr => ({
          kind: tr.classList.contains("region") ? "region" : tr.classList.contains("unattributed") ? "unattributed"
            : tr.classList.contains("heapsite") ? "heapsite" : tr.classList.contains("heap") ? "heap"
            : tr.classList.contains("creator") ? "creator" : "other",
          rank: tr.getAttribute("data-rank") === null ? null : Number(tr.getAttribute("data-rank")),
          bytes: Number(tr.querySelector("td[data-bytes]").getAttribute("data-bytes")),
          text: tr.querySelector("td:nth-child(2)").textContent,
        })),
        why_sum: attr("#why-sum", "data-bytes"),
        why_none: !!q("#why-none"),
        first_region: q("#regions tr:nth-child(2) td:nth-child(2)") ? q("#regions tr:nth-child(2) td:nth-child(2)").textContent : null,
      };
    });
    await page.screenshot({ path: shot, fullPage: true });
    // sorting: a click on "pid" sorts by pid, ascending first for text, descending for numbers
    await page.click("#regions th[data-key='label']");
    seen.sorted_label = await page.evaluate(() => [...document.querySelectorAll("#regions tr td:nth-child(2)")].map(td => td.textContent));
    await page.click("#rss-tabs button[data-by='by_kind']");
    seen.kind_paths = await page.evaluate(() => [...document.querySelectorAll("#rss-svg path.series")].map(p => p.getAttribute("data-name")));
    await page.click("#rss-tabs button[data-by='by_region']");
    seen.region_paths = await page.evaluate(() => [...document.querySelectorAll("#rss-svg path.series")].map(p => p.getAttribute("data-name")));
    await page.click("#rss-tabs button[data-by='by_process']");
    seen.errors = errors;
    seen.requests = requests;
    seen.load_ms = load_ms;
    console.log(JSON.stringify(seen));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().catch(e => { console.error(e); process.exit(1); });
