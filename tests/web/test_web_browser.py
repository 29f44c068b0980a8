"""The dashboard in a real browser (Playwright driving Debian's Chromium): register,
turn on 2FA, link a simex key, create a DCA bot after reading its preview, look at a
deal's chart. Screenshots of each page go to test-artifacts/.

Without /usr/bin/chromium these tests skip — unless SEALBOT_TEST_REQUIRE_BROWSER=1,
where they fail (CI installs the Debian package ``chromium``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from sealbot.config import load_settings
from sealbot.services.auth import totp_now
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.simex import SimexServer
from sealbot.web.app import create_app

from .webkit import PASSWORD, seed_trading, simex_key

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def _require_browser() -> None:
    missing = not CHROMIUM.exists()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = True
    if missing:
        if os.environ.get("SEALBOT_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium (Debian package `chromium`) or the playwright package is missing")
        pytest.skip("no Chromium at /usr/bin/chromium")


@pytest.fixture
def served(tmp_path: Path, simex: SimexServer) -> Iterator[tuple[str, Platform]]:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config",
                             database_url=f"sqlite:///{tmp_path / 'web.db'}")
    init_instance(settings)
    platform = open_platform(settings, exchange_urls={"binance": {"api_base": simex.base_url}}, egress_ip="127.0.0.1")
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


def test_register_2fa_link_a_key_create_a_bot_and_see_a_deal(served: tuple[str, Platform],
                                                             simex: SimexServer) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    base, platform = served
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    key, secret = simex_key(simex, balances={"USDT": "5000"}, ip_whitelist=["127.0.0.1"])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
        try:
            page.goto(f"{base}/")
            expect(page).to_have_url(f"{base}/login")
            page.goto(f"{base}/register")
            page.fill("input[name=email]", "browser@example.org")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Overview")
            page.screenshot(path=str(ARTIFACTS / "01-overview.png"), full_page=True)

            page.goto(f"{base}/accounts")  # no 2FA yet: linking is refused
            page.fill("input[name=label]", "simex")
            page.fill("input[name=api_key]", key)
            page.fill("input[name=api_secret]", secret)
            page.click("form[action='/accounts'] button[type=submit]")
            expect(page.locator(".error")).to_contain_text("two-factor")
            assert len(problems) == 1 and "403" in problems[0]  # the refusal's own status, nothing else
            problems.clear()

            page.goto(f"{base}/security")
            page.click("text=Set up two-factor authentication")
            totp_secret = page.locator("#totp-secret").inner_text()
            page.fill("input[name=code]", totp_now(totp_secret))
            page.click("#totp-setup button[type=submit]")
            expect(page.locator("#recovery-codes li")).to_have_count(10)
            page.screenshot(path=str(ARTIFACTS / "02-security-2fa.png"), full_page=True)

            page.goto(f"{base}/accounts")
            page.fill("input[name=label]", "simex")
            page.fill("input[name=api_key]", key)
            page.fill("input[name=api_secret]", secret)
            page.click("form[action='/accounts'] button[type=submit]")
            row = page.locator("#accounts tbody tr").first
            expect(row).to_contain_text("active (ok)")
            expect(row).to_contain_text(key[-4:])
            assert secret not in page.content()
            page.screenshot(path=str(ARTIFACTS / "03-accounts.png"), full_page=True)

            page.goto(f"{base}/bots")
            page.fill("input[name=name]", "BTC DCA")
            page.fill("input[name=safety_order_step_percentage]", "1")
            page.fill("input[name=price]", "50000")
            table = page.locator("#preview-table")
            expect(table.locator("tbody tr")).to_have_count(4)
            so1 = table.locator("tbody tr").nth(1).locator("td")
            expect(so1.nth(0)).to_have_text("so1")
            expect(so1.nth(2)).to_have_text("49500.00")  # 1 % under the base order price, tick 0.01
            expect(page.locator("#max-funds")).to_have_text("400")
            page.screenshot(path=str(ARTIFACTS / "04-bot-form-preview.png"), full_page=True)
            page.click("#dca-form > button[type=submit]")
            expect(page.locator("#bots tbody tr").first).to_contain_text("BTC DCA")
            page.screenshot(path=str(ARTIFACTS / "05-bots.png"), full_page=True)

            with platform.uow() as uow:
                user = uow.users.by_email("browser@example.org")
                bot = uow.bots.list(user.id)[0]
                bot_id, account_id, user_id = bot.id, bot.account_id, user.id
            assert account_id is not None
            seed_trading(platform, user_id, bot_id, account_id)
            page.goto(f"{base}/bots/{bot_id}")
            expect(page.locator("#deals tbody tr")).to_have_count(2)
            page.goto(f"{base}/bots/{bot_id}/deals/2")
            chart = page.locator("#deal-chart")
            expect(chart).to_have_attribute("data-markers", "1", timeout=15_000)
            expect(chart.locator("canvas").first).to_be_visible()
            expect(page.locator("#fills tbody tr")).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "06-deal-chart.png"), full_page=True)

            page.goto(f"{base}/")
            expect(page.locator("#active-deals")).to_have_text("1")
            page.screenshot(path=str(ARTIFACTS / "07-overview-with-deal.png"), full_page=True)
            page.goto(f"{base}/security")
            expect(page.locator("#audit")).to_contain_text("account.linked")
            page.screenshot(path=str(ARTIFACTS / "08-security.png"), full_page=True)
        finally:
            browser.close()
    assert problems == [], "\n".join(problems)  # no script errors and no CSP violations
