"""Refresh the README's screenshots from a running POPS server.

    make demo                                   # in another terminal: serves the demo
    .venv/bin/python docs/screenshots/take.py   # writes docs/screenshots/*.png

Drives Debian's chromium (`apt-get install chromium`) through Playwright; never
`playwright install`. Options: --base-url (default http://127.0.0.1:8000), --out (default this
directory), --max-height (full-page shots are cut to this many pixels, default 2000). Exits 1
when a page does not answer 200 or the browser reports an error (a CSP refusal, say): a picture
of a page the browser half refused shows nothing worth keeping.
"""

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Error, Response, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# name, path, a selector that shows the page has finished drawing, widths. The API docs at
# 360 px are Swagger UI's own narrow layout (fine, but not worth a picture in the README).
SHOTS = [
    ("home", "/", "main", [360, 1280]),
    ("api-docs", "/api/v1/docs", "#swagger-ui .opblock", [1280]),
]


def shoot(browser: Browser, url: str, ready: str, target: Path, width: int, max_height: int) -> str:
    """Save one page at one width; return what went wrong, or "" when nothing did."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A failed load is reported with its URL by on_response instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def on_response(response: Response) -> None:
        # POPS has no favicon yet; every browser asks for one.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            errors.append(f"{response.url} answered {response.status}")

    page = browser.new_page(viewport={"width": width, "height": 800})
    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        response = page.goto(url, wait_until="networkidle")
        if response is None or response.status != 200:
            return f"{url} answered {response.status if response else 'nothing'}"
        page.wait_for_selector(ready)
        height = min(page.evaluate("document.documentElement.scrollHeight"), max_height)
        page.screenshot(
            path=target, full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height}
        )
        print(f"{target}  ({width} x {height})")
        return "\n  ".join([f"the browser reported errors on {url}:", *errors]) if errors else ""
    finally:
        page.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--max-height", type=int, default=2000)
    options = parser.parse_args()
    base = options.base_url.rstrip("/")
    options.out.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, path, ready, widths in SHOTS:
                for width in widths:
                    url, target = base + path, options.out / f"{name}-{width}.png"
                    try:
                        problem = shoot(browser, url, ready, target, width, options.max_height)
                    except Error as error:  # the server is down, say: one line, no traceback
                        problem = f"cannot take {url}: {error.message.splitlines()[0]}"
                    if problem:
                        print(problem)
                        return 1
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
