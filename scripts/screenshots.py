"""Screenshots of the analyst console's main pages, taken from a demo node.

Starts `bices demo` on a fresh temporary folder and a free loopback port (or uses a running
node given with `--base` and `--token`), waits for the exploitation worker to finish the
sample reports, signs in through the console's own form, and saves one PNG per page into
`docs/screenshots/`. Needs Playwright (Python) and Debian's Chromium at /usr/bin/chromium;
no browser is downloaded::

    python scripts/screenshots.py [--out docs/screenshots] [--user usa.operator]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("BICES_CHROMIUM", "/usr/bin/chromium")
FULL_PAGE = {"report", "entity", "write", "members", "rfis"}  # the others: the first screen
TOKEN_LINE = re.compile(r"^\s+(\S+)\s+([A-Z]{3})\s+.+?\s+(bices_\S+)\s*$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def demo_node() -> Iterator[tuple[str, dict[str, str]]]:
    """`bices demo` in a subprocess; yields its base URL and the printed tokens by user."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="bices-shots-")) / "node"
    process = subprocess.Popen(
        [sys.executable, "-m", "bices", "--data", str(data), "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    tokens: dict[str, str] = {}
    base = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        for line in process.stdout:
            match = TOKEN_LINE.match(line)
            if match:
                tokens[match.group(1)] = match.group(3)
            if "Uvicorn running" in line or time.monotonic() > deadline:
                break
        if not tokens:
            raise SystemExit("bices demo printed no tokens")
        yield base, tokens
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data.parent, ignore_errors=True)


def wait_for_exploitation(base: str, token: str, timeout_s: float = 240) -> None:
    """Until every report the user sees on the first page has its extraction."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout_s
    ids = [
        r["id"]
        for r in httpx.get(f"{base}/api/v1/reports?limit=200", headers=headers).json()["items"]
    ]
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        status = httpx.get(f"{base}/api/v1/reports/{pending[-1]}/entities", headers=headers).json()
        if status.get("status") == "pending":
            time.sleep(0.5)
        else:
            pending.pop()
    print(f"exploitation: {len(ids) - len(pending)} of {len(ids)} reports done")


def sample_rfis(base: str, tokens: dict[str, str]) -> None:
    """A few RFIs on the demo node, so that the board is not empty."""
    asker = {"Authorization": f"Bearer {tokens['usa.operator']}"}
    korea = {"Authorization": f"Bearer {tokens['kor.analyst']}"}
    label = {"classification": "NATO SECRET", "releasable_to": ["NATO", "IP4"], "caveats": []}
    asked = [
        ("Where are the Hwasong-18 launchers held between launches?", "IMMEDIATE", 2),
        ("Which DPRK units moved to Kursk Oblast in October 2024?", "PRIORITY", 5),
        ("Status of KN-23 deliveries through Rajin port", "ROUTINE", 12),
    ]
    ids = []
    for question, priority, days in asked:
        deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + days * 86400))
        body = {"question": question, "priority": priority, "deadline": deadline,
                "addressees": ["KOR", "JPN"], "label": label,
                "detail": "Any reporting since the summer; imagery welcome."}  # fmt: skip
        answer = httpx.post(f"{base}/api/v1/rfis", json=body, headers=asker)
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    httpx.post(f"{base}/api/v1/rfis/{ids[1]}/accept", headers=korea).raise_for_status()


def settle(page: Page, selector: str) -> None:
    """The page's element is there and no API request is in flight (the console counts
    them on the root element; the open stream is not one of them)."""
    page.wait_for_selector(selector, timeout=30_000)
    expect(page.locator("html")).to_have_attribute("data-pending", "0", timeout=30_000)


def shoot(base: str, token: str, out: Path, width: int, height: int) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {token}"}
    reports = httpx.get(f"{base}/api/v1/search?q=Hwasong&limit=1", headers=headers).json()["items"]
    report = reports[0]["id"] if reports else None
    entities = httpx.get(
        f"{base}/api/v1/entities?q=Kim%20Jong%20Un&limit=1", headers=headers
    ).json()
    entity = entities["items"][0]["id"] if entities["items"] else None
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        # A time zone away from UTC, so that the pages show both times distinctly.
        page = browser.new_page(
            viewport={"width": width, "height": height}, timezone_id="Asia/Seoul"
        )
        page.on(
            "console",
            lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(f"{base}/")
        page.fill("#token", token)
        page.click("button[type=submit]")
        settle(page, "#feed-list")
        page.wait_for_selector("#live[data-state=live]")
        shots: list[tuple[str, str, str]] = [
            ("feed", "#/feed", "#feed-list"),
            ("search", "#/search?q=missile%20OR%20rudal", "#results"),
            ("timeline", "#/timeline", "#events"),
            ("map", "#/map", "#map .marker"),
            ("graph", "#/graph", "#graph .node"),
            ("rfis", "#/rfis", "#board"),
            ("write", "#/write", "#w-label-preview .label-banner"),
            ("members", "#/members", "#members-table"),
            ("audit", "#/audit?last=1", "#audit-table"),
        ]
        if report:
            shots.insert(1, ("report", f"#/report/{report}", "#report-body mark.entity"))
        if entity:
            shots.insert(3, ("entity", f"#/entity/{entity}", "#cooccurring-list"))
            shots.insert(6, ("graph-entity", f"#/graph?entity={entity}", "#graph .node"))
        for name, hash_, ready in shots:
            page.goto(f"{base}/console/{hash_}")
            settle(page, ready)
            page.screenshot(path=str(out / f"{name}.png"), full_page=name in FULL_PAGE)
            print(f"{out / name}.png")
        page.set_viewport_size({"width": 820, "height": 1180})
        page.goto(f"{base}/console/#/feed")
        settle(page, "#feed-list")
        page.screenshot(path=str(out / "feed-tablet.png"))
        print(f"{out / 'feed-tablet'}.png")
        browser.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--user", default="usa.operator", help="demo user to sign in as")
    parser.add_argument("--base", help="a running node instead of a new demo node")
    parser.add_argument("--token", help="the token to sign in with, with --base")
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    if args.base:
        if not args.token:
            parser.error("--base needs --token")
        wait_for_exploitation(args.base, args.token)
        problems = shoot(args.base, args.token, args.out, args.width, args.height)
    else:
        with demo_node() as (base, tokens):
            wait_for_exploitation(base, tokens[args.user])
            sample_rfis(base, tokens)
            problems = shoot(base, tokens[args.user], args.out, args.width, args.height)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
