"""Scrapy baseline (HTTP): the same fixture site and fields as bench-http.yaml.

Run by run.sh: scrapy runspider scrapy_spider.py -a base=http://127.0.0.1:PORT
It prints one JSON line with the pages, records and seconds.
"""

import json
import re
import time

import scrapy
from scrapy import signals


class FixtureSiteSpider(scrapy.Spider):
    name = "fixture-site"
    custom_settings = {
        "CONCURRENT_REQUESTS": 8,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "DOWNLOAD_DELAY": 0,
        "ROBOTSTXT_OBEY": True,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "USER_AGENT": "homestream-bench-scrapy",
    }

    def __init__(self, base, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [f"{base}/listings/1"]
        self.pages = 0
        self.records = 0
        self.started = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.report, signal=signals.spider_closed)
        return spider

    def parse(self, response):
        self.pages += 1
        for home in response.css("li.home"):
            beds = re.search(r"(\d+) beds?", home.css('[data-testid="beds"]::text').get(default=""))
            item = {
                "id": home.attrib.get("data-id"),
                "title": " ".join(home.css("h2 ::text").getall()).strip(),
                "price": home.css('[data-testid="price"]::text').get(),
                "beds": beds.group(1) if beds else None,
                "url": response.urljoin(home.css("a::attr(href)").get()),
            }
            yield response.follow(home.css('a[data-testid="home-link"]::attr(href)').get(), self.parse_home, cb_kwargs={"item": item})
        next_page = response.css('a[rel="next"]::attr(href)').get()
        if next_page:
            yield response.follow(next_page, self.parse)

    def parse_home(self, response, item):
        self.pages += 1
        sqft = re.search(r"(\d+) sq ft", response.css('[data-testid="sqft"]::text').get(default=""))
        item["sqft"] = sqft.group(1) if sqft else None
        item["agent"] = response.css('[data-testid="agent"]::text').get()
        self.records += 1
        yield item

    def report(self, spider):
        print(json.dumps({
            "tool": "scrapy (http)",
            "pages": self.pages,
            "records": self.records,
            "seconds": time.monotonic() - self.started,
        }), flush=True)
