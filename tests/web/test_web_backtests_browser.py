"""Backtesting from the dashboard in a real browser (Playwright driving Debian's
Chromium): a new user runs a grid bot, a smart trade (after the form refused a bad
take profit with the API's "field: reason") and a signal bot on recorded signals, and
reads each run's report, with no console error or CSP violation on the way.

Without /usr/bin/chromium or the playwright package this skips, unless
SEALBOT_TEST_REQUIRE_BROWSER=1 (CI), where it fails."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from sealbot.config import load_settings
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.web.app import create_app

from .test_web_browser import ARGS, CHROMIUM, CSP_PROBE, _artifacts, _require_browser
from .webkit import PASSWORD, LeakScan

pytestmark = pytest.mark.browser


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, Platform]]:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config",
                             database_url=f"sqlite:///{tmp_path / 'web.db'}")
    init_instance(settings)
    platform = open_platform(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", platform
    server.should_exit = True
    thread.join(10)


def test_a_user_backtests_a_grid_bot_a_smart_trade_and_a_signal_bot_from_the_dashboard(
        dashboard: tuple[str, Platform]) -> None:
    _require_browser()
    from playwright.sync_api import Page, Response, expect, sync_playwright

    base, _ = dashboard
    shots = _artifacts()
    problems: list[str] = []
    leaks = LeakScan(never={PASSWORD})

    def record(response: Response) -> None:
        try:
            body = response.body().decode("utf-8", "replace")
        except Exception:  # redirects have no body
            body = ""
        leaks.texts.append("\n".join(f"{k}: {v}" for k, v in response.all_headers().items()) + "\n\n" + body)

    def report_drawn(page: Page, fills: int | None = None) -> None:
        report = page.frame_locator("#backtest-report")
        expect(report.locator("#sealbot-chart .main-svg").first).to_be_visible(timeout=30_000)
        shown = int(page.locator("#bt-fills").inner_text())
        assert shown > 0 and (fills is None or shown == fills), shown
        expect(report.locator("#sealbot-report")).to_have_attribute("data-fills", str(shown))
        # plotly drew one marker per fill on the candles (entries, further buys, exits)
        expect(report.locator("#sealbot-chart .scatterlayer .point")).to_have_count(shown)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(CSP_PROBE)
        page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
        page.on("response", record)
        try:
            page.goto(f"{base}/register")
            page.fill("input[name=email]", "backtester@example.org")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Overview")

            page.goto(f"{base}/backtests")
            page.click("#backtest-kinds >> text=Grid bot")
            expect(page.locator("#backtest-form")).to_have_attribute("data-kind", "grid")
            page.fill("#backtest-form input[name=name]", "grid over a week")
            page.fill("#backtest-form input[name=grids_quantity]", "12")
            page.select_option("#backtest-form select[name=grid_type]", "geometric")
            page.screenshot(path=str(shots / "20-backtest-grid-form.png"), full_page=True)
            page.click("#backtest-form button[type=submit]")
            expect(page.locator("h1")).to_contain_text("grid over a week", timeout=60_000)
            expect(page.locator("h1")).to_contain_text("grid")
            report_drawn(page)
            page.screenshot(path=str(shots / "21-backtest-grid.png"), full_page=True)

            page.goto(f"{base}/backtests")
            page.click("#backtest-kinds >> text=Smart trade")
            expect(page.locator("#backtest-form")).to_have_attribute("data-kind", "smart")
            target = "#backtest-form input[name='take_profit_steps.0.profit_percentage']"
            page.fill("#backtest-form input[name=name]", "one smart trade")
            page.fill(target, "-1")
            page.click("#backtest-form button[type=submit]")
            expect(page.locator(".error")).to_have_text(
                "take_profit_steps.0.profit_percentage: Input should be greater than 0")
            expect(page.locator(target)).to_have_attribute("aria-invalid", "true")
            expect(page.locator("#backtest-form input[name=name]")).to_have_value("one smart trade")  # kept
            assert len(problems) == 1 and "422" in problems[0], problems  # the refusal's own status, nothing else
            problems.clear()
            page.screenshot(path=str(shots / "22-backtest-smart-refused.png"), full_page=True)
            page.fill(target, "0.5")
            page.click("#backtest-form button[type=submit]")
            expect(page.locator("h1")).to_contain_text("one smart trade", timeout=60_000)
            report_drawn(page, fills=2)  # in once, out once at the take profit
            page.screenshot(path=str(shots / "23-backtest-smart.png"), full_page=True)

            page.goto(f"{base}/backtests?kind=signal")
            page.fill("#backtest-form input[name=name]", "signals of a week")
            page.click("#backtest-form button[type=submit]")
            expect(page.locator("h1")).to_contain_text("signals of a week", timeout=60_000)
            report_drawn(page, fills=4)  # the four recorded signals of the form's example: two round trips

            page.goto(f"{base}/backtests")
            rows = page.locator("#backtests tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.nth(0)).to_contain_text("signal")
            expect(rows.nth(1)).to_contain_text("smart")
            expect(rows.nth(2)).to_contain_text("grid")
            expect(page.locator("#backtest-usage")).to_contain_text(re.compile(r"^3 of 50 runs kept"))
            page.screenshot(path=str(shots / "24-backtests.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    leaks.check()
