"""The ``sealbot`` command line: parse, call one service function, print the outcome.

Every deliberate error (bad input, bad configuration, a refused action) prints one
line on stderr and exits 2; no traceback for anything the user can fix.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import sealbot
from sealbot.config import Settings, load_settings, masked_view
from sealbot.domain.errors import InvalidConfig, SealbotError
from sealbot.logs import configure_logging

app = typer.Typer(
    name="sealbot",
    help="Self-hosted trading bots for your exchange accounts, built around key custody.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="Key custody: the key-encryption key.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)
simex_app = typer.Typer(help="simex, the local exchange simulator (Binance and KuCoin dialects).",
                        invoke_without_command=True)
bots_app = typer.Typer(help="Bots: import from other platforms.", no_args_is_help=True)
backtest_app = typer.Typer(help="Run bots over recorded market data.", no_args_is_help=True)
data_app = typer.Typer(help="Market data.", no_args_is_help=True)
simex_key_app = typer.Typer(help="API keys on a running simex.", no_args_is_help=True)
users_app = typer.Typer(help="Users of the instance.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(simex_app, name="simex")
app.add_typer(bots_app, name="bots")
app.add_typer(backtest_app, name="backtest")
app.add_typer(data_app, name="data")
app.add_typer(users_app, name="users")
simex_app.add_typer(simex_key_app, name="key")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

PORT_RANGE: dict[str, Any] = {"min": 1, "max": 65535}  # Click refuses anything else as a bad --port


def _positive(value: float) -> float:
    """Callback: a speed of simulated time that must move forward."""
    if value <= 0:
        raise typer.BadParameter(f"must be more than 0, not {value:g}")
    return value


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return settings


def _version(value: bool) -> None:
    if value:
        out.print(f"sealbot {sealbot.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """sealbot: DCA, grid, smart-trade and signal bots, with your exchange keys sealed."""


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (environment over TOML file over defaults), secrets masked."""
    view = masked_view(load_settings())
    table = Table("setting", "value", title="sealbot configuration")
    for name, value in view.items():
        table.add_row(name, value)
    out.print(table)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    clear_unsealable_webhook_keys: Annotated[bool, typer.Option(
        help="If plaintext webhook keys cannot be sealed here (no KEK, no signer), keep the channels "
             "without keys instead of stopping; their owners must issue new keys.")] = False,
) -> None:
    """Migrate the database schema up to REVISION (default: the newest)."""
    from sealbot.services import instance

    settings = _settings()
    instance.upgrade_database(settings, revision, clear_unsealable_webhook_keys=clear_unsealable_webhook_keys)
    out.print(f"database at revision {revision}: {masked_view(settings)['database_url']}")


@app.command()
def init() -> None:
    """Create the data and config directories, the key-encryption key (0600) and the database."""
    from sealbot.services import instance

    report = instance.init_instance(_settings())
    for line in report.lines():
        out.print(line)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: setting `host`).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: setting `port`).", **PORT_RANGE)] = None,
    engine: Annotated[bool | None, typer.Option(
        help="Run the bots in this process (default: when the setting `engine` is in-process); "
             "--no-engine when `sealbot worker` processes run them.")] = None,
) -> None:
    """Serve the web dashboard, the REST API and the signal webhooks, and run the bots."""
    import asyncio

    from sealbot.services.platform import open_platform
    from sealbot.services.serving import serve as serve_all

    settings = _settings()
    asyncio.run(serve_all(open_platform(settings), host=host or settings.host, port=port or settings.port,
                          engine=engine))


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Dashboard port.", **PORT_RANGE)] = 8000,
    speed: Annotated[float, typer.Option(help="Simulated market seconds per real second (more than 0).",
                                         callback=_positive)] = 60.0,
    directory: Annotated[
        Path | None, typer.Option(help="Where the demo instance lives, kept after the demo (default: a new "
                                       "temporary directory, removed when the demo ends).")
    ] = None,
) -> None:
    """Start a self-contained demo: simulated exchange, demo user, running bots, dashboard."""
    from sealbot.services.demo import run_demo
    from sealbot.simex import SimexServer

    configure_logging("WARNING")
    with contextlib.ExitStack() as cleanup, SimexServer(speed=speed) as simex:
        # a throwaway instance is removed when the demo ends (its database and its KEK file
        # with it); one in a --directory of the user's choosing stays
        root = directory or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="sealbot-demo-")))
        exchange_account = simex.admin.create_account("demo", {"USDT": "10000", "BTC": "0.1"})
        out.print(f"simex (simulated Binance, replaying recorded BTC prices x{speed:g}): {simex.base_url}")

        def register_public_key(pem: str) -> str:
            # what a user does on the exchange's website: register the public key, IP-restricted
            created = simex.admin.create_key(int(exchange_account["id"]), public_key_pem=pem,
                                             ip_whitelist=["127.0.0.1"], label="sealbot demo")
            return str(created["key"])

        try:
            run_demo(simex.base_url, register_public_key, root=root, port=port, announce=out.print, speed=speed,
                     simex_now=lambda: datetime.fromtimestamp(simex.admin.clock()["now_ms"] / 1000, UTC))
        except KeyboardInterrupt:
            out.print("demo stopped")


@keys_app.command("rotate-kek")
def keys_rotate_kek() -> None:
    """Rewrap every sealed credential under a new key-encryption key (resumable if interrupted)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from sealbot.services import operations

    settings = _settings()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err) as progress:
        task = progress.add_task("rewrapping data keys", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = operations.rotate_file_kek(settings, advance)
    out.print(f"rewrapped {report.rewrapped} of {report.total} credentials, {report.channel_keys} webhook "
              f"key(s) and {report.totp_secrets} two-factor secret(s): KEK {report.old_kek_id} -> {report.new_kek_id}")
    for retired in operations.retired_kek_files(settings):
        out.print(f"old KEK kept as {retired}: destroy it once no backup from before the rotation is needed")


@keys_app.command("status")
def keys_status() -> None:
    """Show the KEK in use, how many credentials each KEK wraps and any unfinished rotation."""
    from sealbot.services import operations

    for line in operations.keys_status(_settings()):
        out.print(line, markup=False, highlight=False)


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; name any edited, deleted or reordered record (exit 1)."""
    from sealbot.services import operations

    report = operations.verify_audit_log(_settings())
    out.print(report.summary(), markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The new user's e-mail (their login).")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an instance admin.")] = False,
) -> None:
    """Add a user, whatever the registration setting (how users join when sign-up is closed).
    The password is asked twice at the prompt (or read as two lines from stdin), never
    taken from the command line, where other users of the machine could read it."""
    from sealbot.services import auth

    settings = _settings()
    try:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    except typer.Abort:  # no terminal to answer on, or stdin ended
        raise InvalidConfig("password", "give it twice at the prompt (or as two lines on stdin); "
                                        "nothing was changed") from None
    user_id, is_admin = auth.add_user(settings, email, password, admin=admin)
    out.print(f"user {user_id} added: {email.strip().lower()}{' (admin)' if is_admin else ''}",
              markup=False, highlight=False)


@app.command()
def panic(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    reason: Annotated[str, typer.Option(help="Recorded in the audit log.")] = "panic",
) -> None:
    """Global revocation: stop every bot, cancel open orders, destroy every sealed key."""
    from sealbot.services.revocation import run_panic

    settings = _settings()
    if not yes:
        try:
            confirmed = typer.confirm("Destroy every sealed exchange key of every user and stop all bots?")
        except typer.Abort:  # no terminal to answer on (stdin closed or /dev/null)
            confirmed = False
        if not confirmed:
            raise InvalidConfig("--yes", "panic needs confirmation: answer y at the prompt or pass --yes; "
                                         "nothing was changed")
    report = run_panic(settings, reason=reason, actor="cli")
    for line in report.lines():
        out.print(line, markup=False, highlight=False)


@app.command()
def worker(
    partitions: Annotated[int | None, typer.Option(help="Number of account partitions P, the same on every worker "
                                                        "and gateway (default: setting `engine_partitions`).")]
    = None,
    prefix: Annotated[str | None, typer.Option(help="Name prefix of the exchange and partition queues "
                                                    "(default: setting `broker_prefix`).")] = None,
    tick: Annotated[float, typer.Option(help="Seconds between heartbeats (takeover detection, fair share).")] = 0.2,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.", **PORT_RANGE)]
    = None,
    metrics_host: Annotated[str, typer.Option(help="Interface of the metrics port.")] = "127.0.0.1",
    stats_file: Annotated[Path | None, typer.Option(help="Rewrite a JSON snapshot of this worker every tick.")]
    = None,
    worker_id: Annotated[str | None, typer.Option(help="This worker's name (default host:pid:random).")] = None,
    record_latencies: Annotated[bool, typer.Option(help="Keep recent latencies in the stats file (benchmarks).")]
    = False,
    market_data: Annotated[str, typer.Option(help="poll: poll candles itself; ingest: take them from "
                                                  "`sealbot ingest` over the broker.")] = "poll",
    evict_after: Annotated[float | None, typer.Option(
        help="Seconds a peer's heartbeat may stand still before this worker closes the peer's broker "
             "connections through the management API (setting `broker_admin_url`); 0: never "
             "(default: max(1.2, 6 ticks)).")] = None,
) -> None:
    """Run one engine worker: owns the account partitions RabbitMQ gives it (SEALBOT_BROKER_URL)."""
    from sealbot.services.scaleout import WorkerConfig, run_worker

    settings = _settings()
    run_worker(settings, WorkerConfig(partitions=partitions, prefix=prefix, tick=tick, metrics_port=metrics_port,
                                      metrics_host=metrics_host, stats_file=stats_file, worker_id=worker_id,
                                      record_latencies=record_latencies, market_data=market_data,
                                      evict_after=evict_after))


@app.command()
def ingest(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    pairs: Annotated[list[str], typer.Argument(help="Pairs to publish, e.g. BTC/USDT ETH/USDT.")],
    timeframe: Annotated[str, typer.Option(help="Base candle timeframe (the workers' base timeframe).")] = "1m",
    interval: Annotated[float, typer.Option(help="Seconds between two polls.")] = 5.0,
    ticker_interval: Annotated[float, typer.Option(help="At most one ticker per pair per this many seconds "
                                                        "(the guard's reference prices); 0: none.")] = 15.0,
    api_base: Annotated[str | None, typer.Option(help="Poll this endpoint instead of the exchange's own "
                                                      "(a testnet, a simex), e.g. https://testnet.binance.vision; "
                                                      "workers feed its data only to accounts on it.")] = None,
) -> None:
    """Publish an exchange's closed candles and throttled tickers to the broker for
    `sealbot worker --market-data ingest`, named by the endpoint polled."""
    from sealbot.services.scaleout import run_ingest

    run_ingest(_settings(), exchange, pairs, timeframe=timeframe, interval=interval,
               ticker_interval=ticker_interval, api_base=api_base)


@app.command()
def signer(
    allow_uid: Annotated[list[int] | None, typer.Option(help="A uid allowed to sign (repeatable; default: own uid).")]
    = None,
) -> None:
    """Run the signer process: the only process that opens sealed keys, on a Unix socket."""
    from sealbot.services.signer import run_signer

    settings = _settings()
    out.print(f"signer listening on {settings.effective_signer_socket}")
    run_signer(settings, allow_uid)


@bots_app.command("import")
def bots_import(
    export: Annotated[Path, typer.Argument(help="A bot exported as JSON from 3Commas' API.", exists=True,
                                           dir_okay=False, readable=True)],
    output: Annotated[Path | None, typer.Option(help="Write the sealbot config here (default: stdout).")] = None,
) -> None:
    """Translate a 3Commas DCA or grid bot into a sealbot config and explain what did not map."""
    import json

    from sealbot.services.bots import import_3commas_bot

    imported = import_3commas_bot(export.read_bytes())
    text = json.dumps({"kind": imported.kind, "config": imported.config}, indent=2)
    if output:
        output.write_text(text + "\n")
        out.print(f"{imported.kind} bot config written to {output}")
    else:
        out.print(text, markup=False, highlight=False)
    for line in imported.explanations:
        err.print(f"note: {line}", markup=False, highlight=False)


DataOption = Annotated[list[str], typer.Option("--data", help="Candle file per pair: PAIR=FILE or FILE (repeatable).")]


def _when(text: str | None, name: str) -> datetime | None:

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidConfig(name, f"{text!r} is not an ISO date/time such as 2022-01-01 or 2022-01-01T12:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _balances(items: list[str]) -> dict[str, Any]:
    """``--balance USDT=1000`` (repeatable) as asset -> Decimal amount, each finite and 0 or more."""
    from decimal import Decimal, InvalidOperation

    balances: dict[str, Any] = {}
    for item in items:
        asset, sep, amount = item.partition("=")
        try:
            value = Decimal(amount.strip()) if sep and asset.strip() else None
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value < 0:
            raise InvalidConfig("--balance", f"{item!r} is not ASSET=AMOUNT with an amount of 0 or more (USDT=1000)")
        balances[asset.strip().upper()] = value
    return balances


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err)


@backtest_app.command("run")
def backtest_run(
    bot_file: Annotated[Path, typer.Argument(help="Bot config (JSON/TOML) with its \"kind\".", exists=True)],
    data: DataOption,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON result here.")] = None,
    signals: Annotated[Path | None, typer.Option(help="CSV of signals to replay (signal bots).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Resample the data to this timeframe first.")] = None,
    start: Annotated[str | None, typer.Option(help="First candle (ISO date/time, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Last candle (ISO date/time, UTC).")] = None,
    slippage: Annotated[str, typer.Option(help="Market-order slippage as a fraction (0.001 = 0.1 %).")] = "0",
    fee_currency: Annotated[str, typer.Option(help="Where the exchange takes fees: received (Binance: base on a "
                                                   "buy, quote on a sell), quote or base.")] = "received",
    balance: Annotated[list[str] | None, typer.Option(help="Model the account: ASSET=AMOUNT (repeatable); orders "
                                                           "it cannot cover are rejected.")] = None,
) -> None:
    """Backtest one bot config over real candles with exchange fees and precision."""
    from decimal import Decimal, InvalidOperation

    from sealbot.services import backtests

    try:
        slip = Decimal(slippage)
    except InvalidOperation:
        raise InvalidConfig("--slippage", f"{slippage!r} is not a number") from None
    if fee_currency not in backtests.FEE_CURRENCIES:
        raise InvalidConfig("--fee-currency", f"{fee_currency!r} is not one of {', '.join(backtests.FEE_CURRENCIES)}")
    balances = _balances(balance) if balance else None
    result = backtests.backtest(bot_file, data, report=report, json_out=json_out, signals=signals,
                                timeframe=timeframe, start=_when(start, "--start"), end=_when(end, "--end"),
                                slippage=slip, fee_currency=fee_currency, balances=balances)
    table = Table("metric", "value", title=f"backtest {bot_file.name}")
    for name, value in result.metrics.to_dict().items():
        table.add_row(name, "" if value is None else str(value))
    out.print(table)
    # Why the figures are what they are: a bot that stopped at once (a base order below the
    # exchange minimum after rounding) showed a table of zeros and nothing else.
    if result.stopped:
        out.print(f"the bot stopped: {result.stopped}", markup=False)
    warnings = [a for a in result.alerts if a.level.value != "info"]
    for alert in warnings[:5]:
        out.print(f"{alert.level.value} {alert.code}: {alert.message}", markup=False)
    if len(warnings) > 5:
        out.print(f"... and {len(warnings) - 5} more warnings (all alerts are in the --json result)")
    if report:
        out.print(f"report: {report}")


@backtest_app.command("sweep")
def backtest_sweep(
    bot_file: Annotated[Path, typer.Argument(help="Bot config (JSON/TOML) with its \"kind\".", exists=True)],
    data: DataOption,
    space: Annotated[Path, typer.Option(help="JSON parameter space: lists are choices, {low,high,step} ranges.",
                                        exists=True)],
    samples: Annotated[int | None, typer.Option(help="Random search with this many draws (default: full grid).",
                                                min=1)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random search.")] = 0,
    objective: Annotated[str, typer.Option(help="Rank by a result figure, highest first: pnl, pnl_pct, sharpe, "
                                                "sortino, deals_closed, ...")] = "pnl",
    workers: Annotated[int | None, typer.Option(help="Processes (default: one per core).", min=1)] = None,
    top: Annotated[int, typer.Option(help="Rows to show.", min=1)] = 10,
) -> None:
    """Search bot parameters over history on every core; print the ranked table."""
    from sealbot.services import backtests

    progress = _progress()
    task = progress.add_task("backtests", total=None)

    def advance(done: int, total: int) -> None:
        if done == 1:  # drawn from the first finished run on: a refused sweep prints only its one line
            progress.start()
        progress.update(task, completed=done, total=total)

    try:
        result = backtests.sweep(bot_file, data, space, samples=samples, seed=seed, objective=objective,
                                 workers=workers, progress=advance)
    finally:
        if progress.tasks[0].completed:
            progress.stop()
    frame = result.table().head(top)
    table = Table(*[str(c) for c in frame.columns], title=f"sweep ranked by {result.objective}")
    for row in frame.itertuples(index=False):
        table.add_row(*["" if v is None else str(v) for v in row])
    out.print(table)


@data_app.command("download")
def data_download(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    pair: Annotated[str, typer.Argument(help="BASE/QUOTE, e.g. BTC/USDT.")],
    output: Annotated[Path, typer.Option(help="CSV file to write (appended to, so a rerun resumes).")],
    start: Annotated[str, typer.Option(help="First candle (ISO date/time, UTC).")],
    end: Annotated[str | None, typer.Option(help="Last candle (default: now).")] = None,
    timeframe: Annotated[str, typer.Option(help="Candle timeframe.")] = "1m",
    api_base: Annotated[str | None, typer.Option(help="Another base URL for the exchange (e.g. simex).")] = None,
) -> None:
    """Download public candles through ccxt, with a progress bar; resumes where the file ends."""
    from sealbot.domain.market import Pair
    from sealbot.services import backtests


    try:
        market = Pair.parse(pair)
    except ValueError as exc:
        raise InvalidConfig("pair", str(exc)) from None
    first = _when(start, "--start") or datetime.now(UTC)
    last = _when(end, "--end") or datetime.now(UTC)
    with _progress() as progress:
        task = progress.add_task(f"{exchange} {pair} {timeframe}", total=None)
        written = backtests.download(exchange, market, timeframe, first, last, output, api_base=api_base,
                                     progress=lambda done, total: progress.update(task, completed=done, total=total))
    out.print(f"{written} candles written to {output}")


@simex_app.callback()
def simex_serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.", **PORT_RANGE)] = 8001,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second (0: moved by the admin API).",
                                         min=0)] = 1.0,
    admin_token: Annotated[str | None, typer.Option(envvar="SIMEX_ADMIN_TOKEN",
                                                    help="Admin API token (default: random, printed once).")] = None,
) -> None:
    """Serve simex in the foreground (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from sealbot.simex.server import run_simex

    run_simex(host=host, port=port, speed=speed, admin_token=admin_token)


@simex_key_app.command("create")
def simex_key_create(
    url: Annotated[str, typer.Option(help="simex base URL.")] = "http://127.0.0.1:8001",
    admin_token: Annotated[str, typer.Option(envvar="SIMEX_ADMIN_TOKEN", help="simex admin token.")] = "",
    account: Annotated[str, typer.Option(help="simex account name (created if new).")] = "user",
    balance: Annotated[list[str] | None, typer.Option(help="ASSET=AMOUNT, repeatable.")] = None,
    permission: Annotated[list[str] | None, typer.Option(help="e.g. spot, withdrawals; repeatable.")] = None,
    ip: Annotated[list[str] | None, typer.Option(help="Whitelisted IP, repeatable.")] = None,
    public_key: Annotated[Path | None, typer.Option(help="Ed25519 public key PEM file.", exists=True, dir_okay=False,
                                                    readable=True)] = None,
) -> None:
    """Create an API key on a running simex; the secret is printed this once."""
    from sealbot.simex.admin_client import SimexAdminError, create_key_cli

    balances: dict[str, str] = {}
    for item in balance or []:
        asset, sep, amount = item.partition("=")
        if not sep:
            raise InvalidConfig("--balance", f"{item!r} is not ASSET=AMOUNT")
        balances[asset.upper()] = amount
    try:
        created = create_key_cli(url, admin_token, account_name=account, balances=balances or None,
                                 permissions=permission, ip_whitelist=ip,
                                 public_key_pem=public_key.read_text() if public_key else None)
    except SimexAdminError as exc:
        raise SealbotError(f"simex: {exc}") from None
    for name, value in created.items():
        out.print(f"{name}: {value}", markup=False, highlight=False)


# Click's error base class, found from the public BadParameter (BadParameter <
# UsageError < ClickException) whether typer bundles its own copy of Click or not.
_CLICK_ERROR: type[Any] = typer.BadParameter.__mro__[2]


def main() -> None:
    """Entry point. Usage errors (Click's: an unknown command, a value out of an option's
    range) and sealbot's deliberate errors become one line on stderr and exit 2. Nothing
    else is caught: an unexpected exception is a bug and keeps its traceback."""
    try:
        code = app(standalone_mode=False)
    except _CLICK_ERROR as exc:
        context = getattr(exc, "ctx", None)
        if context is not None and exc.format_message() == context.get_help():
            exc.show()  # a command group run without a command: its help, as Click shows it
        else:
            sys.stderr.write(f"error: {exc.format_message()}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-D at a prompt
        sys.stderr.write("aborted\n")
        sys.exit(1)
    except SealbotError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
