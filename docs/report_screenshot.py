"""Make docs/images/loadtest-report.png: a real run's HTML report, rendered by headless Chromium.

    python docs/report_screenshot.py        # needs the loadtest extra, playwright and Debian's chromium

A local server answers three kinds of request (one slower, one failing now and then); a scenario with a
3:2:1 mix ramps the rate over a few seconds; the HTML report is screenshotted at a readable width.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django_prodkit.loadtest.cli import main as loadtest

OUTPUT = Path(__file__).resolve().parent / "images" / "loadtest-report.png"
SCENARIO = """
users = 20
timeout = 2

[[requests]]
name = "list posts"
path = "/api/v1/posts/"
weight = 3

[[requests]]
name = "read post"
path = "/api/v1/posts/42/"
weight = 2

[[requests]]
name = "search"
path = "/api/v1/search/?q=load"
weight = 1

[[stages]]
duration = 4
target = 400

[[stages]]
duration = 3.5
target = 400

[thresholds]
overall = ["p95<100", "error_rate<1%"]
search = ["p99<250"]
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1
    chance = random.Random(7)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        # Search is slower and sometimes fails; reading a post is a little slower than the list.
        delay = {"/api/v1/posts/": 0.002, "/api/v1/posts/42/": 0.004}.get(self.path, 0.03)
        time.sleep(delay * (1 + 3 * self.chance.random() ** 8))
        status = 503 if self.path.startswith("/api/v1/search/") and self.chance.random() < 0.02 else 200
        self.send_response(status)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            (tmp / "scenario.toml").write_text(SCENARIO)
            url = f"http://127.0.0.1:{server.server_address[1]}"
            args = ["--scenario", str(tmp / "scenario.toml"), "--rate", "50", "--url", url]
            loadtest([*args, "--html", str(tmp / "report.html")])
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 900, "height": 1000}, device_scale_factor=1)
                page.goto((tmp / "report.html").as_uri())
                OUTPUT.parent.mkdir(exist_ok=True)
                page.screenshot(path=str(OUTPUT), full_page=True)
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
