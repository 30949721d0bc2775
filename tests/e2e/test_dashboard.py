"""The dashboard in real headless Chromium, over the whole bot.

The bot, the fake GitHub, the scripted LLM and the real opencode in the real
runner image are all real (`make_bot`); Debian's chromium is driven by
Playwright through its `executable_path` (never `playwright install`).
Screenshots land in tests/artifacts/ (dashboard-list.png, dashboard-ticket.png).
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser import ARTIFACTS, launch
from tests.e2e.conftest import ADMIN, REPO, Bot, labeled_payload
from tests.fakes.llm import hang, slow, text, tool
from tests.fakes.server import ServerThread

XSS_TITLE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>Fix & ship'
COOKIE = "autocode_session"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 760})
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


def store_key(bot: Bot) -> str:
    """The `autocode.store` label of this bot's containers (other sessions share the engine)."""
    return hashlib.sha256(bot.settings.database_url.encode()).hexdigest()[:16]


def containers_of(bot: Bot, ticket_id: int) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=autocode.ticket={ticket_id}",
         "--filter", f"label=autocode.store={store_key(bot)}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


def wait_for(what: Callable[[], Any], timeout: float = 120, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def sign_in(page: Page, bot: Bot, path: str = "/") -> None:
    page.goto(bot.url + path)
    assert "/login" in page.url  # no cookie: the form
    page.fill("input[name=token]", ADMIN)
    page.click("form.login button")
    page.wait_for_url(bot.url + path)


def until(page: Page, script: str, arg: Any = None, timeout: float = 60) -> None:
    """Poll `script` in the page until it is true.

    Playwright's own wait_for_function evaluates a string in the page, which
    the dashboard's Content-Security-Policy (script-src 'self') forbids.
    """
    wait_for(lambda: page.evaluate(script, arg), timeout=timeout, step=0.1)


def log_lines(page: Page) -> int:
    return int(page.evaluate("document.querySelectorAll('#log li[data-id]').length"))


def prepare(bot: Bot, first_title: str = "Add a greeting") -> None:
    gh = bot.github
    gh.add_repo(REPO, {"README.md": "# Hello World\n"})
    gh.set_permission(REPO, "Codertocat", "write")
    gh.add_issue(REPO, 1, title=first_title, body="Say hello.", user="Codertocat")
    gh.add_issue(REPO, 2, title="Tidy the build steps", body="Work in steps.", user="Codertocat")


def attacker(target: str) -> ServerThread:
    """Another site whose page posts a cancel to the dashboard, as a CSRF attack would."""

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(
            f'<form id="f" method="post" action="{target}"><input name="csrf" value="guess">'
            "</form><script>document.getElementById('f').submit()</script>"
        )

    return ServerThread(Starlette(routes=[Route("/", home)])).start()


def test_the_dashboard_lists_streams_and_cancels(
    make_bot: Callable[..., Bot], context: BrowserContext
) -> None:
    bot = make_bot()
    gh = bot.github
    prepare(bot)

    # a finished ticket
    bot.llm.script([tool("write", filePath="hello.txt", content="Hello!\n"), text("Added.")])
    done_id = bot.deliver("issues", labeled_payload(gh, number=1))
    assert bot.wait(done_id)["state"] == "succeeded"

    # a running one, whose agent takes a step every 1.5 s and then goes quiet
    steps = [
        slow(tool("bash", command=f"echo step {n}", description=f"Step {n}"), 1.5)
        for n in range(1, 7)
    ]
    bot.llm.script([*steps, hang()])
    page = context.new_page()
    try:
        run_id = bot.deliver("issues", labeled_payload(gh, number=2))
        wait_for(lambda: bot.ticket(run_id)["state"] == "running")

        # no cookie: the login form; it brings the browser back where it was going
        sign_in(page, bot, f"/tickets/{run_id}")
        cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
        assert ADMIN not in cookie["value"]

        # the live log gains lines while the run goes on, without a reload
        page.evaluate("window.__same_page = true")
        until(page, "() => document.getElementById('live').textContent === 'live'")
        before = log_lines(page)
        grown = "n => document.querySelectorAll('#log li[data-id]').length >= n"
        until(page, grown, before + 1)
        until(page, grown, log_lines(page) + 2)
        page.wait_for_selector("#log li:has-text('bash echo step 3')", timeout=60_000)
        assert page.evaluate("window.__same_page") is True
        assert log_lines(page) >= before + 3
        ARTIFACTS.mkdir(exist_ok=True)
        page.wait_for_selector("#log li:has-text('bash echo step 6')", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "dashboard-ticket.png"))

        # the list: the finished and the running ticket
        page.goto(bot.url + "/")
        finished = page.locator(f"tr[data-ticket='{done_id}']")
        running = page.locator(f"tr[data-ticket='{run_id}']")
        assert finished.locator(".state").inner_text() == "succeeded"
        assert running.locator(".state").inner_text() == "running"
        assert "issue #1" in finished.inner_text() and "issue #2" in running.inner_text()
        assert "Codertocat" in finished.inner_text()
        done = bot.ticket(done_id)
        assert finished.locator(f"a[href='{done['pr_url']}']").count() == 1
        tokens = f"{done['tokens_input']:,} / {done['tokens_output']:,}"
        assert tokens in finished.inner_text() and "$" in finished.inner_text()
        assert running.locator(".title").inner_text() == "Tidy the build steps"
        page.screenshot(path=str(ARTIFACTS / "dashboard-list.png"))

        # filters are query parameters
        page.select_option("select[name=state]", "running")
        page.click(".filters button")
        page.wait_for_url("**/?state=running*")
        assert page.locator("tr[data-ticket]").count() == 1
        page.goto(bot.url + "/?repository=nobody/nothing")
        assert page.locator("#no-tickets").is_visible()

        # forged POSTs change nothing: same-origin without/with a wrong token, and another site
        page.goto(f"{bot.url}/tickets/{run_id}")
        for form in ("", "csrf=0000"):
            status = page.evaluate(
                """async ([url, body]) => (await fetch(url, {method: "POST", body,
                   headers: {"content-type": "application/x-www-form-urlencoded"}})).status""",
                [f"/tickets/{run_id}/cancel", form],
            )
            assert status == 403
        evil = attacker(f"{bot.url}/tickets/{run_id}/cancel")
        try:
            other = context.new_page()
            forged: dict[str, int] = {}
            other.on("response", lambda r: forged.setdefault(r.url, r.status))
            other.goto(evil.url.replace("127.0.0.1", "localhost") + "/")
            other.wait_for_load_state("load")
            wait_for(lambda: f"{bot.url}/tickets/{run_id}/cancel" in forged, timeout=30)
            assert forged[f"{bot.url}/tickets/{run_id}/cancel"] == 403
            other.close()
        finally:
            evil.stop()
        assert bot.ticket(run_id)["state"] == "running"
        assert containers_of(bot, run_id)

        # the page's Cancel button stops the container
        began = time.monotonic()
        page.click("#cancel-form button")
        page.wait_for_url(f"**/tickets/{run_id}?note=cancel-requested")
        assert "Cancel requested" in page.locator(".notice").inner_text()
        until(page, "() => document.getElementById('state').textContent === 'cancelled'")
        took = time.monotonic() - began
    finally:
        bot.llm.release()
    ticket = bot.wait(run_id, timeout=60)
    assert ticket["state"] == "cancelled" and ticket["conclusion"] == "cancelled"
    assert took < 20
    assert containers_of(bot, run_id) == []
    assert page.locator("#cancel-form").count() == 0

    # after the run, the log is still there, rendered by the server
    page.reload()
    assert page.locator("#log li:has-text('bash echo step 1')").count() == 1
    assert page.locator("#state").inner_text() == "cancelled"
    assert page.locator("#retry-form button").is_visible()


def test_a_users_title_stays_text_and_retry_runs_the_ticket_again(
    make_bot: Callable[..., Bot], context: BrowserContext
) -> None:
    bot = make_bot()
    prepare(bot, first_title=XSS_TITLE)  # titles come from GitHub users
    bot.llm.script([tool("write", filePath="hello.txt", content="Hello!\n"), text("Added.")])
    first = bot.deliver("issues", labeled_payload(bot.github, number=1))
    assert bot.wait(first)["state"] == "succeeded"
    bot.llm.script([tool("write", filePath="hello.txt", content="Hello again!\n"), text("Redone.")])
    page = context.new_page()
    sign_in(page, bot)
    row = page.locator(f"tr[data-ticket='{first}']")
    assert row.locator(".title").inner_text() == XSS_TITLE
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__xss") is None
    page.click(f"tr[data-ticket='{first}'] a[href='/tickets/{first}']")
    page.wait_for_url(f"**/tickets/{first}")
    assert XSS_TITLE in page.locator("h1").inner_text()
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__xss") is None

    page.click("#retry-form button")
    page.wait_for_url("**note=retry-queued")
    retry_id = int(page.url.split("/tickets/")[1].split("?")[0])
    assert retry_id != first
    ticket = bot.wait(retry_id)
    assert ticket["state"] == "succeeded", ticket
    assert ticket["kind"] == "retry" and ticket["requested_by"] == "dashboard"
    assert bot.github.read_file(REPO, "autocode/issue-1", "hello.txt") == "Hello again!\n"
    # the operator needs no GitHub permission: nobody called "dashboard" was looked up
    looked_up = [r for r in bot.github.requests if "/collaborators/dashboard/" in r["path"]]
    assert looked_up == []
