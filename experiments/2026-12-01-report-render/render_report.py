"""Render a demo report.html in headless Chromium (Debian's `chromium` package): a full-page
screenshot to look at, and a check that the page is what it should be offline.

    python experiments/2026-12-01-report-render/render_report.py demo_out/report.html [--screenshot demo_out/report.png]

Checks: Chromium exits 0; the DOM it builds holds the title, every table and every image the
file has (so nothing was dropped by the parser); every image is a data: URI (no network);
Chromium's log has no page errors (console errors, failed loads, blocked resources). Prints one
JSON line and exits 1 when a check fails. The screenshot's height follows the page (a second
pass at the measured height).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PAGE_ERRORS = re.compile(r"Uncaught|Failed to load|net::ERR_|Refused to|Not allowed to load|CONSOLE\(\d+\)\].*[Ee]rror")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("chromium not found: apt-get install chromium")


def run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("html")
    ap.add_argument("--screenshot", default=None, help="PNG to write (default: next to the HTML, report.png)")
    ap.add_argument("--width", type=int, default=1200)
    a = ap.parse_args()
    page = Path(a.html).resolve()
    shot = Path(a.screenshot or page.with_suffix(".png")).resolve()
    source = page.read_text(encoding="utf-8")
    url = page.as_uri()

    dom = run(["--dump-dom", url])
    built = dom.stdout
    checks = {
        "exit_0": dom.returncode == 0,
        "title": "<h1>berts demo report</h1>" in built,
        "tables": built.count("<table") == source.count("<table") > 0,
        "images": built.count("<img") == source.count("<img") > 0,
        "images_embedded": all(s.startswith("data:image/png;base64,") for s in re.findall(r'<img [^>]*src="([^"]+)"', built)),
        "no_page_errors": not PAGE_ERRORS.search(dom.stderr),
    }
    # the page's height: a tall first shot, then trim to the content (PIL when present)
    height = 1200 + 900 * source.count("<img") + 28 * source.count("<tr")
    shotrun = run([f"--screenshot={shot}", f"--window-size={a.width},{height}", url])
    checks["screenshot"] = shotrun.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000
    try:
        from PIL import Image, ImageChops

        im = Image.open(shot).convert("RGB")
        bg = Image.new("RGB", im.size, (255, 255, 255))
        box = ImageChops.difference(im, bg).getbbox()
        if box:
            im.crop((0, 0, im.size[0], min(im.size[1], box[3] + 40))).save(shot)
    except ImportError:
        pass
    errors = [line for line in (dom.stderr + shotrun.stderr).splitlines() if PAGE_ERRORS.search(line)]
    print(json.dumps({"page": str(page), "screenshot": str(shot), "checks": checks, "page_errors": errors[:5],
                      "bytes": len(source.encode())}))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
