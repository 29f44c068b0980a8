"""The dashboard: server-rendered pages (Jinja2) over the same services as the API.

Forms post back here with the session's CSRF token in a hidden field; the few live
parts (bot preview, deal chart) are fetched by ``static/app.js`` (no inline script:
the CSP forbids it). Secrets shown once (TOTP secret, recovery codes, API tokens,
webhook secrets) are rendered into the response of the action that made them and
never again.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sealbot.domain.errors import InvalidConfig, NotFound, Refused, SealbotError
from sealbot.domain.market import Pair
from sealbot.services import (
    account_ops,
    alerts,
    audit_view,
    auth,
    bot_manage,
    deals,
    guard_limits,
    portfolio,
    users,
    webhooks,
)
from sealbot.services.accounts import list_accounts
from sealbot.services.auth import LockedOut, NotAuthenticated, Principal, TotpRequired
from sealbot.services.bots import OWNER_ACTIONS, create_bot, market_spec, owner_action
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath
from sealbot.web.deps import COOKIE, client_ip, get_platform, is_secure, session_principal
from sealbot.web.schemas import MAX_ID

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _places(value: object, places: int = 8) -> str:
    """A decimal (or its text) shown to at most ``places`` decimals, as plain digits."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN, infinity
        return str(value)
    if exponent >= -places:
        return f"{number:f}"
    text = f"{number.quantize(Decimal(1).scaleb(-places)):f}"
    return text.rstrip("0").rstrip(".")


templates.env.filters["places"] = _places


class _Login(Exception):
    """No session: go to the login page."""


def _who(request: Request) -> Principal:
    who = session_principal(request)
    if who is None:
        raise _Login()
    return who


async def _form(request: Request, who: Principal) -> Mapping[str, Any]:
    """The posted form, after checking its CSRF token against the session cookie."""
    form = await request.form()
    token = request.cookies.get(COOKIE, "")
    if not auth.csrf_matches(token, str(form.get("csrf_token", ""))):
        raise Refused("csrf", "the form is stale; reload the page")
    return form


def _render(request: Request, name: str, who: Principal | None, status_code: int = 200,
            **context: Any) -> HTMLResponse:
    csrf = auth.csrf_for(request.cookies[COOKIE]) if who is not None and COOKIE in request.cookies else ""
    return templates.TemplateResponse(request, name, {"who": who, "csrf": csrf, **context}, status_code=status_code)


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def install(app: FastAPI) -> None:
    """Send page visitors without a session to the login form."""

    @app.exception_handler(_Login)
    async def to_login(_: Request, __: _Login) -> Response:
        return _redirect("/login")


# --- login, registration -------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _render(request, "login.html", None)


def _same_origin(request: Request) -> None:
    """Login and registration have no session to tie a CSRF token to, so a post from
    another site (which could log the victim into the attacker's account) is refused by
    what the browser says: ``Sec-Fetch-Site``, or else ``Origin`` (which is ``null``
    under our ``Referrer-Policy: no-referrer``, and then tells nothing)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site in ("cross-site", "same-site") or (
            origin not in (None, "null") and urlsplit(origin).netloc != request.headers.get("host", "")):
        raise Refused("origin", "the form was posted from another site")


@router.post("/login", response_class=HTMLResponse)
async def login_post(request: Request) -> Response:
    _same_origin(request)
    form = await request.form()
    platform = get_platform(request)
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    code = str(form.get("totp_code", "")).strip() or None
    try:
        issued = auth.login(platform, email, password, totp_code=code, ip=client_ip(request),
                            user_agent=request.headers.get("user-agent"))
    except TotpRequired:
        return _render(request, "login.html", None, 401, email=email, need_code=True,
                       error="Enter the code from your authenticator app (or a recovery code).")
    except NotAuthenticated:
        return _render(request, "login.html", None, 401, email=email, error="Wrong e-mail or password.")
    except LockedOut as exc:  # this e-mail's lockout, or this address's limit
        return _render(request, "login.html", None, 429, email=email,
                       error=f"{exc.reason.capitalize()}. Try again in {exc.retry_after} seconds.")
    response = _redirect("/")
    response.set_cookie(COOKIE, issued.token, max_age=int(auth.SESSION_TTL.total_seconds()), httponly=True,
                        samesite="lax", secure=is_secure(request), path="/")
    return response


_CLOSED = "Registration is closed on this instance: ask its operator for an account."


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request) -> HTMLResponse:
    if not auth.registration_open(get_platform(request)):
        return _render(request, "register.html", None, closed=True, error=_CLOSED)
    return _render(request, "register.html", None)


@router.post("/register", response_class=HTMLResponse)
async def register_post(request: Request) -> Response:
    _same_origin(request)
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    try:
        auth.register(get_platform(request), email, password, ip=client_ip(request))
    except InvalidConfig as exc:
        return _render(request, "register.html", None, 422, email=email, error=f"{exc.field}: {exc.reason}")
    except Refused as exc:
        if exc.rule != "registration":
            raise
        return _render(request, "register.html", None, 403, closed=True, error=_CLOSED)
    except LockedOut as exc:  # too many sign-ups from this address
        return _render(request, "register.html", None, 429, email=email,
                       error=f"Too many sign-ups from your address. Try again in {exc.retry_after} seconds.")
    return await login_post(request)


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = _who(request)
    await _form(request, who)
    auth.logout(get_platform(request), who)
    response = _redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


# --- overview --------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    who = _who(request)
    platform = get_platform(request)
    return _render(request, "overview.html", who, portfolio=portfolio.portfolio(platform, who.user_id),
                   open_deals=deals.list_deals(platform, who.user_id, status="open", limit=20, offset=0),
                   alerts=alerts.list_alerts(platform, who.user_id, unacknowledged=True, limit=20, offset=0),
                   me=users.get_user(platform, who.user_id))


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(request: Request, alert_id: IdPath) -> Response:
    who = _who(request)
    await _form(request, who)
    alerts.acknowledge(get_platform(request), who.user_id, alert_id)
    return _redirect("/")


# --- exchange accounts -------------------------------------------------------------------


def _accounts(request: Request, who: Principal, status_code: int = 200, **extra: Any) -> HTMLResponse:
    """The accounts with their key health: the permission report of the last check (at
    link time, then every watchdog pass), and the watchdog's newest finding per account."""
    platform = get_platform(request)
    findings: dict[int, alerts.AlertView] = {}
    for alert in alerts.list_alerts(platform, who.user_id, limit=10_000).items:
        if alert.code.startswith("watchdog.") and alert.account_id is not None:
            newest = findings.get(alert.account_id)
            if newest is None or alert.created_at > newest.created_at:
                findings[alert.account_id] = alert
    return _render(request, "accounts.html", who, status_code, accounts=list_accounts(platform, who.user_id),
                   findings=findings, **extra)


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request) -> HTMLResponse:
    return _accounts(request, _who(request))


@router.post("/accounts", response_class=HTMLResponse)
async def link_account(request: Request) -> Response:
    who = _who(request)
    form = await _form(request, who)
    platform = get_platform(request)
    try:
        auth.require_second_factor(who)
        await account_ops.link(platform, who.user_id, str(form.get("exchange", "binance")),
                               str(form.get("label", "")), str(form.get("api_key", "")),
                               str(form.get("api_secret", "")), str(form.get("passphrase", "")) or None)
    except (Refused, InvalidConfig) as exc:
        reason = exc.reason
        return _accounts(request, who, 403 if isinstance(exc, Refused) else 422, error=reason)
    return _redirect("/accounts")


@router.post("/accounts/{account_id}/revoke", response_class=HTMLResponse)
async def revoke_account(request: Request, account_id: IdPath) -> Response:
    who = _who(request)
    await _form(request, who)
    platform = get_platform(request)
    try:
        auth.require_second_factor(who)
    except Refused as exc:
        return _accounts(request, who, 403, error=exc.reason)
    report = await account_ops.revoke(platform, who.user_id, account_id)
    return _accounts(request, who, notice=" ".join(report.lines()))


# --- bots ----------------------------------------------------------------------------------


def _whole(form: Mapping[str, Any], field: str) -> int:
    try:
        return int(str(form.get(field, "")).strip() or 0)
    except ValueError:
        raise InvalidConfig(field, "must be a whole number") from None


def _dca_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The DCA settings the form offers, as config fields (market rules added later)."""
    fields = ("base_order_volume", "safety_order_volume", "safety_order_step_percentage", "take_profit")
    config: dict[str, Any] = {f: str(form.get(f, "")).strip() for f in fields}
    config["max_safety_orders"] = _whole(form, "max_safety_orders")
    config["base_order_type"] = "market"
    return config


def _grid_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The grid settings the form offers: a price range, how many levels, how they are
    spaced, and the quote to invest (spread over the levels)."""
    config: dict[str, Any] = {f: str(form.get(f, "")).strip() for f in ("lower_price", "upper_price", "investment")}
    config["grids_quantity"] = _whole(form, "grids_quantity")
    config["grid_type"] = str(form.get("grid_type", "arithmetic"))
    config["order_currency_type"] = "quote"
    return config


BOT_FORMS = ("dca", "grid")


async def _bot_config(platform: Platform, who: Principal,
                      form: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """(kind, account, config) from a bot form, with the exchange's rules for the pair."""
    kind = str(form.get("kind", "dca"))
    if kind not in BOT_FORMS:
        raise InvalidConfig("kind", f"must be one of {', '.join(BOT_FORMS)}")
    try:
        account_id = int(str(form.get("account_id", "")))
        pair = Pair.parse(str(form.get("pair", "")).strip().upper())
    except ValueError:
        raise InvalidConfig("pair", "choose an account and a pair like BTC/USDT") from None
    if not 1 <= account_id <= MAX_ID:  # an id past the database's integers was a server error
        raise InvalidConfig("account_id", "choose one of your accounts")
    spec = await market_spec(platform, who.user_id, account_id, pair)
    if kind == "grid":
        return kind, account_id, {**_grid_form(form), "market": spec}
    return kind, account_id, {**_dca_form(form), "markets": [spec]}


@router.get("/bots", response_class=HTMLResponse)
def bots_page(request: Request) -> HTMLResponse:
    who = _who(request)
    platform = get_platform(request)
    return _render(request, "bots.html", who, bots=bot_manage.list_bots(platform, who.user_id, limit=200),
                   accounts=[a for a in list_accounts(platform, who.user_id) if a.status != "revoked"])


@router.post("/bots/preview", response_class=HTMLResponse)
async def bot_preview(request: Request) -> HTMLResponse:
    """The preview table as an HTML fragment (``app.js`` swaps it in as the form changes)."""
    who = _who(request)
    form = await _form(request, who)
    try:
        kind, _, config = await _bot_config(get_platform(request), who, form)
        price = Decimal(str(form.get("price", "")))
        table = bot_manage.preview(kind, config, price)
    except InvalidOperation:
        return _render(request, "_preview.html", who, 422, error="price: enter a number")
    except (InvalidConfig, NotFound) as exc:
        return _render(request, "_preview.html", who, 422, error=str(exc))
    return _render(request, "_preview.html", who, kind=kind, preview=table)


@router.post("/bots", response_class=HTMLResponse)
async def bot_create(request: Request) -> Response:
    who = _who(request)
    form = await _form(request, who)
    platform = get_platform(request)
    try:
        kind, account_id, config = await _bot_config(platform, who, form)
        create_bot(platform, who.user_id, account_id, kind,
                   str(form.get("name", "")).strip() or f"{kind.upper()} bot", config, start=form.get("start") == "on")
    except (InvalidConfig, NotFound) as exc:
        return _render(request, "bots.html", who, 422, bots=bot_manage.list_bots(platform, who.user_id, limit=200),
                       accounts=list_accounts(platform, who.user_id), error=str(exc))
    return _redirect("/bots")


@router.post("/bots/{bot_id}/{action}", response_class=HTMLResponse)
async def bot_action(request: Request, bot_id: IdPath, action: str) -> Response:
    who = _who(request)
    await _form(request, who)
    platform = get_platform(request)
    if action in OWNER_ACTIONS or action == "delete":
        try:
            if action == "delete":
                bot_manage.delete_bot(platform, who.user_id, bot_id)
            else:
                owner_action(platform, who.user_id, bot_id, action)
        except InvalidConfig as exc:  # a bot still running cannot be deleted; one with no account cannot start
            return _render(request, "bots.html", who, 422, error=exc.reason,
                           bots=bot_manage.list_bots(platform, who.user_id, limit=200),
                           accounts=list_accounts(platform, who.user_id))
    elif action == "webhook-secret":
        secret = webhooks.new_webhook_secret(platform, who.user_id, bot_id)
        return _render(request, "bots.html", who, bots=bot_manage.list_bots(platform, who.user_id, limit=200),
                       accounts=list_accounts(platform, who.user_id), webhook_secret=secret, webhook_bot=bot_id)
    else:
        raise NotFound("action", action)
    return _redirect("/bots")


@router.get("/bots/{bot_id}", response_class=HTMLResponse)
def bot_page(request: Request, bot_id: IdPath) -> HTMLResponse:
    who = _who(request)
    platform = get_platform(request)
    return _render(request, "bot.html", who, bot=bot_manage.get_bot(platform, who.user_id, bot_id),
                   deals=deals.list_deals(platform, who.user_id, bot_id=bot_id, limit=200, offset=0))


@router.get("/bots/{bot_id}/deals/{no}", response_class=HTMLResponse)
def deal_page(request: Request, bot_id: IdPath, no: IdPath) -> HTMLResponse:
    who = _who(request)
    platform = get_platform(request)
    return _render(request, "deal.html", who, detail=deals.deal_detail(platform, who.user_id, bot_id, no))


@router.post("/bots/{bot_id}/deals/{no}/close")
async def deal_close(request: Request, bot_id: IdPath, no: IdPath) -> Response:
    who = _who(request)
    await _form(request, who)
    deals.close_deal(get_platform(request), who.user_id, bot_id, no)
    return _redirect(f"/bots/{bot_id}/deals/{no}")


# --- portfolio ----------------------------------------------------------------------------


def _portfolio(request: Request, who: Principal, status_code: int = 200, **extra: Any) -> HTMLResponse:
    platform = get_platform(request)
    return _render(request, "portfolio.html", who, status_code, holdings=portfolio.holdings(platform, who.user_id),
                   pnl=portfolio.portfolio(platform, who.user_id), **extra)


@router.get("/portfolio", response_class=HTMLResponse)
def portfolio_page(request: Request) -> HTMLResponse:
    """Balances on every linked account valued in the user's currency, their sum, and the
    value over time (the chart reads ``/api/v1/portfolio/history``)."""
    return _portfolio(request, _who(request))


@router.post("/portfolio/refresh", response_class=HTMLResponse)
async def portfolio_refresh(request: Request) -> Response:
    """Snapshot every account's balances now (the service skips accounts snapshotted in
    the last seconds, so repeated clicks cost the exchange nothing)."""
    who = _who(request)
    await _form(request, who)
    try:
        await portfolio.refresh_holdings(get_platform(request), who.user_id)
    except SealbotError as exc:
        return _portfolio(request, who, 502, error=f"refresh failed: {exc}")
    return _redirect("/portfolio")


@router.post("/portfolio/currency", response_class=HTMLResponse)
async def portfolio_currency(request: Request) -> Response:
    who = _who(request)
    form = await _form(request, who)
    try:
        portfolio.set_valuation_currency(get_platform(request), who.user_id, str(form.get("currency", "")))
    except InvalidConfig as exc:
        return _portfolio(request, who, 422, error=f"{exc.field}: {exc.reason}")
    return _redirect("/portfolio")


# Backtest pages: web/backtest_pages.py.


# --- security ---------------------------------------------------------------------------------


def _security(request: Request, who: Principal, status_code: int = 200, **extra: Any) -> HTMLResponse:
    platform = get_platform(request)
    return _render(request, "security.html", who, status_code, me=users.get_user(platform, who.user_id),
                   sessions=auth.list_sessions(platform, who), tokens=auth.list_tokens(platform, who),
                   audit=audit_view.my_audit(platform, who.user_id, limit=50),
                   scopes=[s for s in auth.SCOPES if s != auth.ADMIN_SCOPE or who.is_admin],
                   guard_limits=guard_limits.user_guard_limits(platform, who.user_id), **extra)


@router.get("/security", response_class=HTMLResponse)
def security_page(request: Request) -> HTMLResponse:
    return _security(request, _who(request))


@router.post("/security/2fa/setup", response_class=HTMLResponse)
async def totp_setup(request: Request) -> HTMLResponse:
    who = _who(request)
    await _form(request, who)
    return _security(request, who, totp_setup=auth.begin_totp(get_platform(request), who))


@router.post("/security/2fa/confirm", response_class=HTMLResponse)
async def totp_confirm(request: Request) -> HTMLResponse:
    who = _who(request)
    form = await _form(request, who)
    try:
        codes = auth.confirm_totp(get_platform(request), who, str(form.get("code", "")))
    except InvalidConfig as exc:
        return _security(request, who, 422, error=exc.reason)
    return _security(request, _who(request), recovery_codes=codes)


@router.post("/security/2fa/recovery-codes", response_class=HTMLResponse)
async def totp_new_codes(request: Request) -> HTMLResponse:
    """Replace the recovery codes (the old ones stop working); needs a current code."""
    who = _who(request)
    form = await _form(request, who)
    try:
        codes = auth.regenerate_recovery_codes(get_platform(request), who, str(form.get("code", "")).strip())
    except InvalidConfig as exc:
        return _security(request, who, 422, error=f"{exc.field}: {exc.reason}")
    except LockedOut as exc:  # too many wrong passwords or codes for this account (the login lockout)
        return _security(request, who, 429, error=f"Too many wrong codes. Try again in {exc.retry_after} seconds.")
    return _security(request, who, recovery_codes=codes)


@router.post("/security/2fa/disable", response_class=HTMLResponse)
async def totp_disable(request: Request) -> HTMLResponse:
    """Turn two-factor authentication off; needs a current code or a recovery code."""
    who = _who(request)
    form = await _form(request, who)
    try:
        auth.disable_totp(get_platform(request), who, str(form.get("code", "")).strip())
    except InvalidConfig as exc:
        return _security(request, who, 422, error=f"{exc.field}: {exc.reason}")
    except LockedOut as exc:  # too many wrong passwords or codes for this account (the login lockout)
        return _security(request, who, 429, error=f"Too many wrong codes. Try again in {exc.retry_after} seconds.")
    return _security(request, who, notice="Two-factor authentication is off. Linking or revoking a key needs it.")


@router.post("/security/password", response_class=HTMLResponse)
async def password_change(request: Request) -> HTMLResponse:
    """Change the password (needs the current one) and end the user's other sessions."""
    who = _who(request)
    form = await _form(request, who)
    try:
        ended = auth.change_password(get_platform(request), who, str(form.get("current_password", "")),
                                     str(form.get("new_password", "")))
    except InvalidConfig as exc:
        return _security(request, who, 422, error=f"{exc.field}: {exc.reason}")
    except LockedOut as exc:  # too many wrong passwords or codes for this account (the login lockout)
        return _security(request, who, 429, error=f"Too many wrong passwords. Try again in {exc.retry_after} seconds.")
    return _security(request, who, notice=f"Password changed. {ended} other session(s) ended.")


@router.post("/security/tokens", response_class=HTMLResponse)
async def token_create(request: Request) -> HTMLResponse:
    who = _who(request)
    form = await request.form()
    if not auth.csrf_matches(request.cookies.get(COOKIE, ""), str(form.get("csrf_token", ""))):
        raise Refused("csrf", "the form is stale; reload the page")
    try:
        issued = auth.create_token(get_platform(request), who, str(form.get("name", "")),
                                   [str(s) for s in form.getlist("scopes")])
    except InvalidConfig as exc:
        return _security(request, who, 422, error=f"{exc.field}: {exc.reason}")
    return _security(request, who, new_token=issued)


@router.post("/security/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: IdPath) -> Response:
    who = _who(request)
    await _form(request, who)
    auth.revoke_token(get_platform(request), who, token_id)
    return _redirect("/security")


@router.post("/security/sessions/{session_id}/revoke")
async def session_revoke(request: Request, session_id: IdPath) -> Response:
    who = _who(request)
    await _form(request, who)
    auth.revoke_session(get_platform(request), who, session_id)
    return _redirect("/security")


@router.post("/security/guard-limits", response_class=HTMLResponse)
async def guard_limits_save(request: Request) -> HTMLResponse:
    """The user's own trading limits from the form: an empty field takes the default,
    ``off`` switches the limit off, pairs are comma-separated."""
    who = _who(request)
    form = await _form(request, who)
    given: dict[str, Any] = {}
    for name in guard_limits.LIMIT_FIELDS:
        text = str(form.get(name, "")).strip()
        if not text:
            continue
        if text.lower() == "off":
            given[name] = None
        elif name == "allowed_pairs":
            given[name] = [p.strip() for p in text.split(",") if p.strip()]
        else:
            given[name] = text
    try:
        guard_limits.set_user_guard_limits(get_platform(request), who.user_id, given)
    except InvalidConfig as exc:
        return _security(request, who, 422, error=f"{exc.field}: {exc.reason}")
    return _security(request, who, notice="Trading limits saved. They apply to your bots' next order.")


@router.post("/security/guard-limits/clear", response_class=HTMLResponse)
async def guard_limits_clear(request: Request) -> HTMLResponse:
    who = _who(request)
    await _form(request, who)
    guard_limits.clear_user_guard_limits(get_platform(request), who.user_id)
    return _security(request, who, notice="Trading limits are back to the defaults.")


def page_error(request: Request, exc: SealbotError) -> HTMLResponse | None:
    """Errors on a dashboard page as a page (API paths keep their JSON)."""
    if request.url.path.startswith("/api/"):
        return None
    who = session_principal(request)
    status_code = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, Refused) else 400
    message = f"{exc.kind} not found" if isinstance(exc, NotFound) else str(exc)
    return _render(request, "error.html", who, status_code, message=message)
