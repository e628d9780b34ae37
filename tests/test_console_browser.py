"""The analyst console end to end, in Debian's Chromium driven by Playwright.

A real node (SQLite, exploitation worker on) is served on a free loopback port; the tests
sign in through the console's form, watch the live feed take a report posted through the
API, follow it to its page and an entity, and check that a user of another member finds
no trace of a report not releasable to it anywhere: feed, live stream, search, counts,
facets, suggestions, entity pages, map, graph, page titles.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bices.node import Node
from tests.conftest import Coalition, auth, make_node, report_json, served

CHROMIUM = Path(os.environ.get("BICES_CHROMIUM", "/usr/bin/chromium"))
T = TypeVar("T")

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]


def require_browser() -> None:
    """Skip without Chromium or Playwright, except under CI=true, where that fails."""
    missing = None
    if sync_playwright is None:
        missing = "playwright is not installed (pip install -e '.[test]')"
    elif not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing}, and CI=true needs the browser tests")
    pytest.skip(missing)


def wait_until(check: Callable[[], T | None], timeout_s: float = 30, what: str = "condition") -> T:
    """Poll `check` until it returns a value (not None or False), or fail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value is not None and value is not False:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


PYONGYANG = {"lat": 39.0392, "lon": 125.7625, "name": "Pyongyang"}
HIDDEN_SITE = {"lat": 43.1155, "lon": 131.8855, "name": "Depot Zircon-7"}
SHARED_LABEL = {"classification": "NATO SECRET", "releasable_to": ["NATO", "KOR"], "caveats": []}
USA_ONLY = {"classification": "NATO CONFIDENTIAL", "releasable_to": ["USA"], "caveats": []}


@dataclass
class Site:
    base: str
    node: Node
    usa: str
    kor: str
    shared: list[str]
    hidden: str
    browser: Browser

    def post(self, token: str, **fields: Any) -> str:
        answer = httpx.post(f"{self.base}/api/v1/reports", json=report_json(**fields),
                            headers=auth(token), timeout=10)  # fmt: skip
        assert answer.status_code == 201, answer.text
        report_id: str = answer.json()["id"]
        return report_id

    def get(self, token: str, path: str, **params: Any) -> Any:
        answer = httpx.get(
            f"{self.base}/api/v1{path}", params=params, headers=auth(token), timeout=10
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def exploited(self, token: str, report_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            result: dict[str, Any] = self.get(token, f"/reports/{report_id}/entities")
            return result if result["status"] != "pending" else None

        return wait_until(done, what=f"exploitation of {report_id}")

    def signed_in(self, token: str) -> Page:
        page = self.browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # Console errors (a policy violation among them), but not the browser's note of each
        # 4xx answer, which the tests ask for on purpose.
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.goto(f"{self.base}/")
        expect(page).to_have_url(f"{self.base}/console/")
        expect(page.locator("h1")).to_have_text("Sign in")
        page.fill("#token", token)
        page.click("form.signin button[type=submit]")
        expect(page.locator("#feed-list")).to_be_visible()
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        page.errors = errors  # type: ignore[attr-defined]
        return page


def idle(page: Page) -> None:
    """No API request in flight (the console counts them on the root element). A locator
    assertion, not wait_for_function: the console's policy forbids evaluating strings."""
    expect(page.locator("html")).to_have_attribute("data-pending", "0")


def until_true(page: Page, expression: str, timeout_s: float = 15) -> None:
    """Poll a script expression from outside the page (DevTools evaluation, not eval)."""
    wait_until(lambda: page.evaluate(expression) or None, timeout_s, expression)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_browser()
    node = make_node(tmp_path_factory.mktemp("console-e2e") / "node", "sqlite")
    coalition = Coalition(node)
    usa = coalition.user("USA", name="usa.analyst")
    kor = coalition.user("KOR", name="kor.analyst")
    with served(node) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        site = Site(base, node, usa, kor, [], "", browser)
        site.shared = [
            site.post(usa, title="Hwasong-18 launch observed near Pyongyang", label=SHARED_LABEL,
                      body="North Korea launched a Hwasong-18 missile from Pyongyang. "
                           "Kim Jong Un watched the launch with officials.",
                      locations=[PYONGYANG]),
            site.post(kor, title="Joint exercise off the east coast", label=SHARED_LABEL,
                      body="South Korea and the United States held a missile defence exercise.",
                      source={"name": "JCS", "reliability": "A", "credibility": 2}),
        ]  # fmt: skip
        site.hidden = site.post(
            usa, title="Zircon dispersal at the Vladivostok depot", label=USA_ONLY,
            body="The Pacific Fleet moved a Zircon missile to Vladivostok. Sergei Shoigu "
                 "inspected the depot near Vladivostok.",
            locations=[HIDDEN_SITE],
        )  # fmt: skip
        for report_id in [*site.shared, site.hidden]:
            site.exploited(usa, report_id)
        try:
            yield site
        finally:
            browser.close()
    node.close()


def test_sign_in_follow_the_live_feed_to_a_report_and_an_entity(site: Site) -> None:
    page = site.signed_in(site.usa)
    expect(page).to_have_title("Live feed · BICES console")
    count = page.locator("#feed-count")
    expect(count).to_have_text("3 reports you may see")

    title = "Hwasong-18 transporter seen leaving Pyongyang"
    body = "A Hwasong-18 launcher left Pyongyang. North Korea moved it east."
    report_id = site.post(
        site.usa, title=title, label=SHARED_LABEL, locations=[PYONGYANG], body=body
    )
    first = page.locator("#feed-list > li").first
    expect(first).to_contain_text(title)  # arrived through the stream, no reload
    expect(first.locator(".new-flag")).to_have_text("new")
    expect(count).to_have_text("4 reports you may see")

    first.get_by_role("link", name=title).click()
    expect(page).to_have_url(f"{site.base}/console/#/report/{report_id}")
    expect(page.locator("#report-title")).to_have_text(title)
    expect(page).to_have_title(f"{title} · BICES console")
    for where in ("top", "bottom"):
        banner = page.locator(f".label-banner.banner-{where}")
        expect(banner).to_have_text("NATO SECRET // REL TO NATO, KOR")
        expect(banner).to_have_class("label-banner cls-4 banner-" + where)
    expect(page.locator(".meta-list abbr.grading")).to_have_text("B2")
    expect(page.locator("#signature")).to_have_text("valid for 1 version")
    expect(page.locator("#versions li")).to_have_count(1)

    extraction = site.exploited(site.usa, report_id)
    mention = next(e for e in extraction["entities"] if e["canonical"] == "North Korea")
    link = page.locator("#report-body mark.entity a", has_text=mention["text"]).first
    expect(link).to_have_attribute("href", f"#/entity/{mention['entity_id']}")
    link.focus()
    page.keyboard.press("Enter")  # keyboard navigation: entity links are real links
    expect(page.locator("h1")).to_have_text("North Korea")
    expect(page).to_have_title("North Korea · BICES console")
    expect(page.locator("#entity-reports")).to_contain_text(title)
    expect(page.locator("#cooccurring-list")).to_contain_text("Pyongyang")
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_a_user_of_another_member_finds_no_trace_of_a_hidden_report(site: Site) -> None:
    hidden_title = "Zircon dispersal at the Vladivostok depot"
    usa_only = site.exploited(site.usa, site.hidden)["entities"]
    shared_ids = {
        e["entity_id"] for r in site.shared for e in site.exploited(site.usa, r)["entities"]
    }
    hidden_entity = next(e for e in usa_only if e["entity_id"] not in shared_ids)
    visible_total = site.get(site.kor, "/reports")["total"]
    page = site.signed_in(site.kor)
    seen: list[str] = []

    def leaks(*typed: str) -> list[str]:
        """Words of the hidden reports found on the page (not counting what the user typed)."""
        idle(page)
        html = page.content()
        seen.append(page.url)
        words = [hidden_title, "Zircon", "Vladivostok", HIDDEN_SITE["name"], site.hidden,
                 hidden_entity["canonical"]]  # fmt: skip
        return [w for w in words if w not in typed and (w in html or w in page.title())]

    # Feed and its count: only what the API counts for this user.
    expect(page.locator("#feed-count")).to_have_text(f"{visible_total} reports you may see")
    assert leaks() == []

    # The live stream: a hidden report stored before a visible one never shows up.
    site.post(site.usa, title="Zircon reload observed", label=USA_ONLY, body="Zircon again.")
    sentinel = site.post(site.usa, title="Sentinel report for KOR", label=SHARED_LABEL)
    expect(page.locator("#feed-list > li").first).to_contain_text("Sentinel report for KOR")
    expect(page.locator("#feed-list > li")).to_have_count(visible_total + 1)
    assert leaks() == []

    # Search: no hit, and the hidden report counts in no total or facet.
    page.goto(f"{site.base}/console/#/search?q=Zircon")
    expect(page.locator("#result-count")).to_have_text("0 reports")
    expect(page.locator(".results .state.empty")).to_be_visible()
    assert leaks("Zircon") == []
    page.goto(f"{site.base}/console/#/search?q=missile")
    expected = site.get(site.kor, "/search", q="missile")
    expect(page.locator("#result-count")).to_have_text(f"{expected['total']} reports")
    assert expected["total"] == 3  # two shared reports and the sentinel; not the hidden one
    assert site.get(site.usa, "/search", q="missile")["total"] == 4
    classification = page.locator("#facet-classification")
    expect(classification).to_contain_text("NATO SECRET")
    expect(classification).not_to_contain_text("CONFIDENTIAL")
    expect(page.locator("#facet-member .facet-count")).to_have_text(["2", "1"])
    assert leaks() == []

    # Suggestions while typing come from the entities this user may see.
    with page.expect_response(lambda r: "/api/v1/entities?" in r.url):
        page.fill("#q", hidden_entity["canonical"][:5])
    idle(page)
    options = page.locator("#entity-suggestions option")
    values = [options.nth(i).get_attribute("value") for i in range(options.count())]
    assert hidden_entity["canonical"] not in values

    # The hidden report and an entity only it mentions answer like missing ones.
    page.goto(f"{site.base}/console/#/report/{site.hidden}")
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page).to_have_title("Not found · BICES console")
    page.goto(f"{site.base}/console/#/entity/{hidden_entity['entity_id']}")
    expect(page.locator("h1")).to_have_text("Not found")
    assert leaks() == []

    # Map: only the visible reports' locations, and not the hidden site.
    visible = site.get(site.kor, "/reports", limit=200)["items"]
    located = [r for r in visible if r["locations"]]
    assert located and site.hidden not in {r["id"] for r in visible}
    page.goto(f"{site.base}/console/#/map")
    expect(page.locator("#map-count")).to_contain_text(
        f"{len(located)} report locations from {len(located)} reports"
    )
    expect(page.locator("#map .report-loc")).to_have_count(len(located))
    assert leaks() == []

    # Graph: no node for the hidden report or what only it mentions.
    page.goto(f"{site.base}/console/#/graph")
    expect(page.locator("#graph .node").first).to_be_visible()
    expect(page.locator(f'#graph [data-key="r:{site.hidden}"]')).to_have_count(0)
    expect(page.locator(f'#graph [data-key="r:{sentinel}"]')).to_have_count(1)
    expect(page.locator(f'#graph [data-key="e:{hidden_entity["entity_id"]}"]')).to_have_count(0)
    assert leaks() == []

    # Timeline and RFI board render from this user's answers as well.
    for path in ("timeline", "rfis", "members"):
        page.goto(f"{site.base}/console/#/{path}")
        expect(page.locator("h1")).to_be_visible()
        assert leaks() == [], path
    assert len(seen) >= 9
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_the_label_picker_offers_only_what_the_user_may_create(site: Site) -> None:
    page = site.signed_in(site.kor)
    page.goto(f"{site.base}/console/#/write")
    options = page.locator("#w-label-classification option")
    expect(options).to_have_text(["PUBLIC", "NATO UNCLASSIFIED", "NATO RESTRICTED",
                                  "NATO CONFIDENTIAL", "NATO SECRET"])  # fmt: skip
    expect(page.locator(".label-picker .caveats")).to_contain_text("You hold no caveats")
    expect(page.locator("#w-label-rel-IP4")).to_be_checked()  # KOR's own community
    expect(page.locator("#w-label-preview")).to_have_text("NATO UNCLASSIFIED // REL TO IP4")

    page.uncheck("#w-label-rel-IP4")
    page.check("#w-label-rel-USA")
    expect(page.locator("#w-label-problem")).to_have_text(
        "The label must be releasable to your own member, KOR."
    )
    page.check("#w-label-rel-KOR")
    page.select_option("#w-label-classification", "NATO SECRET")
    expect(page.locator("#w-label-problem")).to_have_text("")
    expect(page.locator("#w-label-preview")).to_have_text("NATO SECRET // REL TO KOR, USA")

    page.fill("#w-title", "Written in the console")
    page.fill("#w-body", "Kim Jong Un visited Pyongyang.")
    page.fill("#w-source", "Console test")
    page.click("#w-submit")
    expect(page.locator("#report-title")).to_have_text("Written in the console")
    expect(page.locator(".label-banner.banner-top")).to_have_text("NATO SECRET // REL TO KOR, USA")
    page.context.close()


def test_the_stream_reader_parses_and_resumes_without_loss_or_repeat(site: Site) -> None:
    page = site.signed_in(site.kor)
    parsed = page.evaluate("""async () => {
        const { SseParser } = await import("/console/js/stream.js");
        const got = [];
        const parser = new SseParser((e) => got.push(e));
        const chunks = [
            "retry: 2000\\n: open\\n\\nid: a1\\nevent: rep", "ort\\ndata: {\\"x\\"", ":1}\\n\\r",
            "\\ndata: one\\ndata: two\\r\\n\\r\\n", "event: closed\\ndata: {}\\n",
        ];
        for (const chunk of chunks) parser.push(chunk);
        return { got, last: parser.lastEventId, retry: parser.retry };
    }""")
    assert parsed == {
        "got": [{"id": "a1", "event": "report", "data": '{"x":1}'},
                {"id": None, "event": "message", "data": "one\ntwo"}],  # carried no id
        "last": "a1", "retry": 2000,
    }  # fmt: skip

    # A live stream that breaks resumes from the last id it was given.
    page.evaluate("""async () => {
        const { LiveStream } = await import("/console/js/stream.js");
        const token = () => sessionStorage.getItem("bices.console.token");
        const stream = window.testStream = new LiveStream(token);
        window.testTitles = [];
        window.testStates = [];
        stream.addEventListener("report", (e) => window.testTitles.push(e.detail.title));
        stream.addEventListener("state", (e) => window.testStates.push(e.detail.state));
        stream.start();
    }""")
    until_true(page, "window.testStream.state === 'live'")
    site.post(site.kor, title="Before the break", label=SHARED_LABEL)
    until_true(page, "window.testTitles.includes('Before the break')")
    page.evaluate("window.testStream.controller.abort()")  # the connection drops
    until_true(page, "window.testStates.includes('reconnecting')")
    site.post(site.kor, title="During the break", label=SHARED_LABEL)
    until_true(page, "window.testTitles.includes('During the break')")
    site.post(site.kor, title="After the break", label=SHARED_LABEL)
    until_true(page, "window.testTitles.includes('After the break')")
    titles = page.evaluate("window.testTitles")
    assert titles == ["Before the break", "During the break", "After the break"]
    assert "resuming" in page.evaluate("window.testStates")
    page.evaluate("window.testStream.stop()")
    page.context.close()


def test_signing_out_and_a_revoked_token(site: Site) -> None:
    token = Coalition(site.node).user("GBR", name="gbr.console")
    page = site.signed_in(token)
    page.reload()  # still signed in (the token lives in the tab's session storage)
    expect(page.locator("#feed-list")).to_be_visible()
    page.keyboard.press("Tab")  # the first stop is the skip link, which leads to the content
    expect(page.locator("#skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_be_focused()
    page.click("#sign-out")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert page.evaluate("sessionStorage.getItem('bices.console.token')") is None

    page.fill("#token", "bices_not-a-token")
    page.click("form.signin button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("Not signed in")

    page.fill("#token", token)
    page.fill("#username", "someone.else")
    page.click("form.signin button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("another user than someone.else")

    page.fill("#username", "gbr.console")
    page.click("form.signin button[type=submit]")
    expect(page.locator("#feed-list")).to_be_visible()
    site.node.coalition.revoke("gbr.console")
    page.goto(f"{site.base}/console/#/search?q=missile")
    expect(page.locator("h1")).to_have_text("Sign in")
    expect(page.locator("#signin-error")).to_contain_text("Signed out")
    page.context.close()
