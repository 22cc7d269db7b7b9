"""Playwright for Python baseline (browser): the same fixture site and fields as
bench-browser.yaml, in the same Debian Chromium, with 8 tabs.

Run by run.sh: python playwright_bench.py http://127.0.0.1:PORT /usr/bin/chromium
It prints one JSON line with the pages, records and seconds.
"""

import asyncio
import json
import re
import sys
import time
from urllib.parse import urljoin, urlparse

from playwright.async_api import async_playwright

CONCURRENCY = 8
BLOCKED_TYPES = {"image", "font", "media"}

CARDS = """cards => cards.map(card => ({
  id: card.dataset.id,
  title: card.querySelector('h2')?.textContent.trim() ?? null,
  price: card.querySelector('[data-testid="price"]')?.textContent.trim() ?? null,
  beds: card.querySelector('[data-testid="beds"]')?.textContent ?? '',
  url: card.querySelector('a')?.href ?? null,
  detail: card.querySelector('a[data-testid="home-link"]')?.href ?? null,
}))"""

DETAIL = """() => ({
  sqft: document.querySelector('[data-testid="sqft"]')?.textContent ?? '',
  agent: document.querySelector('[data-testid="agent"]')?.textContent ?? null,
})"""


async def main(base, chromium):
    allowed_host = urlparse(base).hostname
    started = time.monotonic()
    pages = 0
    records = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        context = await browser.new_context()

        async def route(route):
            request = route.request
            if request.resource_type in BLOCKED_TYPES or urlparse(request.url).hostname != allowed_host:
                await route.abort("blockedbyclient")
            else:
                await route.continue_()

        await context.route("**/*", route)
        tabs = asyncio.Queue()
        for _ in range(CONCURRENCY):
            tabs.put_nowait(await context.new_page())

        async def load(url, script, arg=None):
            nonlocal pages
            tab = await tabs.get()
            try:
                await tab.goto(url, wait_until="load")
                pages += 1
                if arg is None:
                    return await tab.evaluate(script)
                return await tab.eval_on_selector_all(arg, script)
            finally:
                tabs.put_nowait(tab)

        async def detail(item):
            extra = await load(item.pop("detail"), DETAIL)
            sqft = re.search(r"(\d+) sq ft", extra["sqft"])
            item["sqft"] = sqft.group(1) if sqft else None
            item["agent"] = extra["agent"]
            beds = re.search(r"(\d+) beds?", item["beds"])
            item["beds"] = beds.group(1) if beds else None
            records.append(item)

        url = f"{base}/listings/1"
        while url:
            tab = await tabs.get()
            try:
                await tab.goto(url, wait_until="load")
                pages += 1
                items = await tab.eval_on_selector_all("li.home", CARDS)
                next_link = await tab.eval_on_selector_all('a[rel="next"]', "links => links.map(l => l.getAttribute('href'))")
            finally:
                tabs.put_nowait(tab)
            await asyncio.gather(*(detail(item) for item in items))
            url = urljoin(url, next_link[0]) if next_link else None
        await browser.close()
    print(json.dumps({
        "tool": "playwright (browser)",
        "pages": pages,
        "records": len(records),
        "seconds": time.monotonic() - started,
    }), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
