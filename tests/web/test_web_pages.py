"""The dashboard's pages through the real HTTP stack (no browser): every page renders
for its owner under the strict CSP with no inline script, every state-changing form
carries the CSRF token and is refused without it, another user's pages are 404, and a
dashboard backtest runs and serves its report sandboxed. Every response goes through
the secret-leak scan (``http`` fixture)."""

from __future__ import annotations

import re
from decimal import Decimal

from sealbot.services.platform import Platform
from sealbot.simex import SimexServer
from sealbot.web.app import CSP

from .webkit import DCA_CONFIG, Clients, User, seed_trading, signup, simex_key

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
_INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
_POST_FORM = re.compile(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", re.S | re.I)


async def _trading_user(http: Clients, simex: SimexServer, platform: Platform, email: str) -> tuple[User, int, int]:
    user = await signup(http, email)
    key, secret = simex_key(simex, ip_whitelist=["127.0.0.1"])
    http.leaks.never.add(secret)
    r = await user.client.post("/api/v1/accounts", json={"exchange": "binance", "label": f"{email[:5]}-acct",
                                                         "api_key": key, "api_secret": secret})
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    r = await user.client.post("/api/v1/bots", json={"kind": "dca", "name": f"{email[:5]}-bot", "account_id": account,
                                                     "config": DCA_CONFIG})
    bot = r.json()["id"]
    seed_trading(platform, user.user_id, bot, account)
    return user, account, bot


async def _backtest(user: User) -> str:
    r = await user.client.post("/backtests", data={
        "csrf_token": user.csrf, "name": "week of BTC", "candles": "bundled/BTC-PERP-1m-20211231-20220107.csv.gz",
        "kind": "dca", "markets.0.pair": "BTC/USDT", "markets.0.tick_size": "0.01", "markets.0.step_size": "0.00001",
        "base_order_volume": "100",
        "safety_order_volume": "100", "max_safety_orders": "3", "safety_order_step_percentage": "1",
        "take_profit": "1"})
    assert r.status_code == 303, r.text
    return str(r.headers["location"]).rsplit("/", 1)[1]


async def test_every_page_renders_under_the_strict_csp_and_every_form_carries_the_csrf_token(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, _, bot = await _trading_user(http, simex, platform, "alice@example.org")
    run = await _backtest(user)
    pages = ["/", "/accounts", "/bots", f"/bots/{bot}", f"/bots/{bot}/deals/2", "/portfolio", "/backtests",
             f"/backtests/{run}", "/security"]
    for path in pages:
        r = await user.client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["content-security-policy"] == CSP and r.headers["x-frame-options"] == "DENY"
        assert not _INLINE_SCRIPT.search(r.text) and not _INLINE_HANDLER.search(r.text), path
        forms = _POST_FORM.findall(r.text)
        assert forms, path  # at least the logout form
        for form in forms:
            assert f'name="csrf_token" value="{user.csrf}"' in form, (path, form[:120])
    anonymous = http.new()
    for path in pages:
        r = await anonymous.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    for path in ("/login", "/register"):
        r = await anonymous.get(path)
        assert r.status_code == 200 and not _INLINE_SCRIPT.search(r.text)


async def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, account, bot = await _trading_user(http, simex, platform, "carol@example.org")
    for path, data in [(f"/bots/{bot}/delete", {}), (f"/bots/{bot}/start", {"csrf_token": "forged"}),
                       (f"/accounts/{account}/revoke", {}), ("/portfolio/currency", {"currency": "BTC"}),
                       (f"/bots/{bot}/deals/2/close", {})]:
        r = await user.client.post(path, data=data)
        assert r.status_code == 403 and "csrf" in r.text, (path, r.status_code)
    bot_now = (await user.client.get(f"/api/v1/bots/{bot}")).json()
    assert bot_now["status"] == "stopped"
    assert (await user.client.get(f"/api/v1/accounts/{account}")).json()["status"] == "active"
    assert (await user.client.get("/api/v1/portfolio/settings")).json()["currency"] == "USDT"
    from sealbot.services import inbox

    assert inbox.pending(platform, bot_ids=[bot]) == []
    r = await user.client.post(f"/bots/{bot}/start", data={"csrf_token": user.csrf})  # with it: done
    assert r.status_code == 303
    assert (await user.client.get(f"/api/v1/bots/{bot}")).json()["status"] == "running"


async def test_a_running_bot_is_paused_and_resumed_from_the_bots_page(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, _account, bot = await _trading_user(http, simex, platform, "paula@example.org")
    assert (await user.client.post(f"/bots/{bot}/start", data={"csrf_token": user.csrf})).status_code == 303
    page = (await user.client.get("/bots")).text
    assert f'action="/bots/{bot}/pause"' in page and f'action="/bots/{bot}/delete"' not in page
    assert (await user.client.post(f"/bots/{bot}/pause", data={"csrf_token": user.csrf})).status_code == 303
    assert (await user.client.get(f"/api/v1/bots/{bot}")).json()["status"] == "paused"
    page = (await user.client.get("/bots")).text
    assert f'action="/bots/{bot}/start"' in page and f'action="/bots/{bot}/pause"' not in page
    assert (await user.client.post(f"/bots/{bot}/start", data={"csrf_token": user.csrf})).status_code == 303
    assert (await user.client.get(f"/api/v1/bots/{bot}")).json()["status"] == "running"


async def test_another_users_pages_chart_and_backtests_are_not_found(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    alice, _, bot = await _trading_user(http, simex, platform, "alice@example.org")
    run = await _backtest(alice)
    bob = await signup(http, "bob@example.org")
    for path in (f"/bots/{bot}", f"/bots/{bot}/deals/2", f"/backtests/{run}", f"/backtests/{run}/report",
                 f"/api/v1/bots/{bot}/deals/2/chart", "/backtests/..%2F..%2Fetc"):
        r = await bob.client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "alice" not in r.text and "week of BTC" not in r.text
    for path in ("/", "/accounts", "/bots", "/portfolio", "/backtests", "/security"):
        r = await bob.client.get(path)
        assert r.status_code == 200 and "alice" not in r.text and run not in r.text, path
    r = await bob.client.post(f"/bots/{bot}/delete", data={"csrf_token": bob.csrf})
    assert r.status_code == 404
    assert (await alice.client.get(f"/api/v1/bots/{bot}")).status_code == 200


async def test_a_dashboard_backtest_keeps_its_result_and_serves_the_report_sandboxed(
        http: Clients, platform: Platform) -> None:
    user = await signup(http, "dora@example.org", two_factor=False)
    run = await _backtest(user)
    page = await user.client.get(f"/backtests/{run}")
    closed = re.search(r'id="bt-deals">(\d+)<', page.text)
    assert closed and int(closed.group(1)) > 0  # a week of BTC at 1 % take profit closes deals
    assert f'src="/backtests/{run}/report" sandbox="allow-scripts"' in page.text
    report = await user.client.get(f"/backtests/{run}/report")
    csp = report.headers["content-security-policy"]
    assert csp.startswith("sandbox allow-scripts;") and "connect-src" not in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'self'" in csp and report.headers["x-frame-options"] == "SAMEORIGIN"
    assert 'id="sealbot-report"' in report.text
    listing = await user.client.get("/backtests")
    assert "week of BTC" in listing.text
    form = {"csrf_token": user.csrf, "kind": "dca", "markets.0.pair": "BTC/USDT", "base_order_volume": "100",
            "safety_order_volume": "100", "max_safety_orders": "1", "safety_order_step_percentage": "1",
            "take_profit": "1"}
    r = await user.client.post("/backtests", data={**form, "candles": "../../etc/passwd"})
    assert r.status_code == 422 and "candles: choose one of the listed candle files" in r.text
    r = await user.client.post("/backtests", data={**form, "candles": "bundled/BTC-PERP-1m-20211231-20220107.csv.gz",
                                                   "base_order_volume": "-5"})
    assert r.status_code == 422 and "base_order_volume: Input should be greater than 0" in r.text
    assert 'name="base_order_volume" value="-5" inputmode="decimal" aria-invalid="true"' in r.text  # kept, marked
    assert len(re.findall(r'href="/backtests/[0-9T-]+[0-9a-f]+"', (await user.client.get("/backtests")).text)) == 1


async def test_key_health_shows_the_watchdogs_newest_finding_and_revoke_needs_the_second_factor(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, account, _ = await _trading_user(http, simex, platform, "erin@example.org")
    page = await user.client.get("/accounts")
    assert "no findings" in page.text and "active (ok)" in page.text
    with platform.uow() as uow:
        uow.alerts.add(user.user_id, "critical", "watchdog.foreign_order", "account erin-acct: an order sealbot "
                       "did not place", account_id=account)
    page = await user.client.get("/accounts")
    assert re.search(r'class="watchdog neg">foreign order at [0-9-]+ [0-9:]+ \(open alert\)', page.text)

    no_2fa = await signup(http, "frank@example.org", two_factor=False)  # a session without a second factor
    r = await no_2fa.client.post(f"/accounts/{account}/revoke", data={"csrf_token": no_2fa.csrf})
    assert r.status_code == 403  # refused before the account is even looked up
    r = await user.client.post(f"/accounts/{account}/revoke", data={"csrf_token": user.csrf})
    assert r.status_code == 200 and 'role="status"' in r.text
    assert (await user.client.get(f"/api/v1/accounts/{account}")).json()["status"] == "revoked"
    assert "Revoke</button>" not in (await user.client.get("/accounts")).text


def test_the_deal_chart_uses_the_finest_timeframe_that_shows_the_whole_deal_in_one_request() -> None:
    from datetime import timedelta

    from sealbot.services.deals import chart_timeframe

    assert chart_timeframe(timedelta(minutes=5)) == "1m"
    assert chart_timeframe(timedelta(minutes=960)) == "1m"  # 960 bars + 30 before the open < 1000
    assert chart_timeframe(timedelta(minutes=980)) == "5m"
    assert chart_timeframe(timedelta(days=2)) == "5m"
    assert chart_timeframe(timedelta(days=30)) == "1h"
    assert chart_timeframe(timedelta(days=400)) == "1d"


async def test_the_chart_api_marks_each_fill_of_the_deal(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, _, bot = await _trading_user(http, simex, platform, "gina@example.org")
    r = await user.client.get(f"/api/v1/bots/{bot}/deals/2/chart")
    assert r.status_code == 200, r.text
    chart = r.json()
    assert chart["pair"] == "BTC/USDT" and chart["timeframe"] == "1m" and chart["candles_error"] is None
    assert [(m["kind"], m["side"], m["price"]) for m in chart["markers"]] == [("entry", "buy", "50000")]
    assert chart["candles"]  # simex's 1m bars before the deal's fill
    for c in chart["candles"]:
        low, high = Decimal(str(c["low"])), Decimal(str(c["high"]))
        assert low <= Decimal(str(c["open"])) <= high and low <= Decimal(str(c["close"])) <= high


async def test_logging_in_through_the_form_asks_for_the_second_factor_and_refuses_other_sites(
        http: Clients) -> None:
    from .webkit import PASSWORD

    user = await signup(http, "hana@example.org")
    browser = http.new()
    r = await browser.post("/login", data={"email": user.email, "password": "wrong password!"})
    assert r.status_code == 401 and "Wrong e-mail or password." in r.text and "sealbot_session" not in r.headers.get(
        "set-cookie", "")
    r = await browser.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code == 401 and "Enter the code from your authenticator app" in r.text
    assert "sealbot_session" not in r.headers.get("set-cookie", "")
    r = await browser.post("/login", data={"email": user.email, "password": PASSWORD, "totp_code": user.code()},
                           headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "sealbot_session" not in r.headers.get("set-cookie", "")
    r = await browser.post("/register", data={"email": "victim@example.org", "password": PASSWORD},
                           headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = await browser.post("/login", data={"email": user.email, "password": PASSWORD, "totp_code": user.code()},
                           headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and "sealbot_session" not in r.headers.get("set-cookie", "")
    r = await browser.post("/login", data={"email": "victim@example.org", "password": PASSWORD})
    assert r.status_code == 401  # the refused registration created no user
    r = await browser.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "totp_code": user.next_code()},  # the signup's code is spent
                           headers={"Origin": "http://testserver"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain HTTP here
    assert (await browser.get("/security")).status_code == 200


async def test_secrets_made_on_a_page_are_shown_once_and_requests_reach_the_bot(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    from sealbot.services import inbox

    user, _, bot = await _trading_user(http, simex, platform, "ivan@example.org")
    r = await user.client.post(f"/bots/{bot}/webhook-secret", data={"csrf_token": user.csrf})
    found = re.search(r'<code id="webhook-secret">([^<]+)</code>', r.text)
    assert r.status_code == 200 and found and len(found.group(1)) >= 22  # >= 128 bits, url-safe
    http.leaks.once.add(found.group(1))
    r = await user.client.post("/security/tokens", data={"csrf_token": user.csrf, "name": "ci",
                                                         "scopes": ["bots:read", "deals:read"]})
    token = re.search(r'<code id="new-token">([^<]+)</code>', r.text)
    assert r.status_code == 200 and token and token.group(1).startswith("sbt_")
    http.leaks.once.add(token.group(1))
    for path in ("/bots", f"/bots/{bot}", "/security"):
        page = (await user.client.get(path)).text
        assert found.group(1) not in page and token.group(1) not in page
    assert "bots:read, deals:read" in (await user.client.get("/security")).text

    r = await user.client.post(f"/bots/{bot}/deals/2/close", data={"csrf_token": user.csrf})
    assert r.status_code == 403 and "start or pause it" in r.text  # a stopped bot is in no engine
    assert inbox.pending(platform, bot_ids=[bot]) == []
    assert (await user.client.post(f"/api/v1/bots/{bot}/start")).json()["status"] == "running"
    r = await user.client.post(f"/bots/{bot}/deals/2/close", data={"csrf_token": user.csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/bots/{bot}/deals/2"
    assert [type(m.event).__name__ for m in inbox.pending(platform, bot_ids=[bot])] == ["CloseAtMarket"]


async def test_the_grid_form_previews_its_levels_and_creates_the_bot(
        http: Clients, simex: SimexServer, platform: Platform) -> None:
    user, account, _ = await _trading_user(http, simex, platform, "jana@example.org")
    form = {"csrf_token": user.csrf, "kind": "grid", "name": "BTC grid", "account_id": str(account), "pair": "btc/usdt",
            "lower_price": "45000", "upper_price": "55000", "grids_quantity": "11", "grid_type": "arithmetic",
            "investment": "1000", "price": "50000"}
    r = await user.client.post("/bots/preview", data=form)
    assert r.status_code == 200, r.text
    rows = re.findall(r"<tr><td>(\d+)</td><td>([0-9.]+)</td><td>([0-9.]+)</td>", r.text)
    assert len(rows) == 10 and rows[0][1:] == ("45000.00", "46000.00")  # 11 levels, 10 intervals
    assert rows[-1][1:] == ("54000.00", "55000.00")
    assert all(Decimal(sell) - Decimal(buy) == 1000 for _, buy, sell in rows)  # arithmetic: equal price steps
    max_funds = re.search(r'id="grid-max-funds">([0-9.]+)<', r.text)
    assert max_funds and Decimal("1000") <= Decimal(max_funds.group(1)) <= Decimal("1002")  # investment + fees

    r = await user.client.post("/bots/preview", data={**form, "upper_price": "44000"})
    assert r.status_code == 422 and "upper_price" in r.text
    r = await user.client.post("/bots/preview", data={**form, "grids_quantity": "ten"})
    assert r.status_code == 422 and "grids_quantity: must be a whole number" in r.text
    r = await user.client.post("/bots/preview", data={**form, "kind": "martingale"})
    assert r.status_code == 422 and "kind: must be one of dca, grid" in r.text

    r = await user.client.post("/bots", data=form)
    assert r.status_code == 303
    bots = (await user.client.get("/api/v1/bots")).json()["items"]
    grid = next(b for b in bots if b["name"] == "BTC grid")
    assert grid["kind"] == "grid" and grid["status"] == "stopped"
    detail = (await user.client.get(f"/api/v1/bots/{grid['id']}")).json()
    assert detail["config"]["grids_quantity"] == 11 and detail["config"]["market"]["pair"] == "BTC/USDT"


def test_long_decimals_are_shown_to_at_most_the_asked_places_without_trailing_zeros() -> None:
    from sealbot.web.pages import _places

    assert _places("1000.000000000000000000000") == "1000"
    assert _places("49748.75621890547263681592040") == "49748.75621891"  # rounded half even at the 8th place
    assert _places("49500.00") == "49500.00"  # already short: shown as the service gave it
    assert _places("1E+3") == "1000" and _places("not a number") == "not a number"


async def test_recovery_codes_are_replaced_and_two_factor_turned_off_only_with_a_valid_code(http: Clients) -> None:
    user = await signup(http, "kim@example.org")
    security = (await user.client.get("/security")).text
    assert "10 recovery codes left" in security and 'id="totp-disable"' in security
    r = await user.client.post("/security/2fa/recovery-codes", data={"csrf_token": user.csrf, "code": "000000"})
    assert r.status_code == 422 and "code: is not a valid code" in r.text
    r = await user.client.post("/security/2fa/recovery-codes", data={"csrf_token": user.csrf, "code": user.code()})
    assert r.status_code == 422 and "each code works once" in r.text  # the code that turned 2FA on is spent
    r = await user.client.post("/security/2fa/recovery-codes",
                               data={"csrf_token": user.csrf, "code": user.next_code()})
    codes = re.findall(r"<li><code>([0-9a-f]{10}-[0-9a-f]{10})</code></li>", r.text)
    assert r.status_code == 200 and len(codes) == 10
    http.leaks.once.update(codes)
    later = (await user.client.get("/security")).text
    assert not any(c in later for c in codes) and "10 recovery codes left" in later
    r = await user.client.post("/security/2fa/disable", data={"csrf_token": user.csrf})
    assert r.status_code == 422
    r = await user.client.post("/security/2fa/disable", data={"csrf_token": user.csrf, "code": codes[0]})
    assert r.status_code == 200 and "Two-factor authentication is off." in r.text and 'id="totp-state">Off.' in r.text
    audit = (await user.client.get("/security")).text
    assert "auth.recovery_codes_regenerated" in audit and "auth.2fa_disabled" in audit
