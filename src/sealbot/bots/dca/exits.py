"""How a DCA config's take profit and stop loss become the shared exit executor's settings."""

from __future__ import annotations

from decimal import Decimal

from sealbot.bots.common.exits import ExitSettings, Target
from sealbot.bots.dca.config import DcaConfig, ProfitCurrency, TakeProfitType
from sealbot.domain.money import HUNDRED


def exit_settings(cfg: DcaConfig, take_profit: Decimal | None = None, stop_loss: Decimal | None = None) -> ExitSettings:
    """``take_profit``/``stop_loss`` override the config (manual EditExits on one deal)."""
    if take_profit is not None:
        targets: tuple[Target, ...] = (Target(share=HUNDRED, profit_pct=take_profit),)
    elif cfg.take_profit_steps:
        targets = tuple(
            Target(share=s.amount_percentage, profit_pct=s.profit_percentage) for s in cfg.take_profit_steps
        )
    else:
        targets = (Target(share=HUNDRED, profit_pct=cfg.take_profit),)
    sl = cfg.stop_loss_percentage if stop_loss is None else stop_loss
    return ExitSettings(
        targets=targets,
        trailing_deviation=cfg.trailing_deviation if cfg.trailing_enabled else None,
        profit_basis=cfg.base_order_volume if cfg.take_profit_type is TakeProfitType.BASE else None,
        stop_loss_pct=sl if sl else None,
        stop_loss_timeout=cfg.stop_loss_timeout_in_seconds,
        trailing_stop=cfg.tsl_enabled and bool(sl),
        breakeven=cfg.sl_to_breakeven_enabled,
        profit_in_base=cfg.profit_currency is ProfitCurrency.BASE,
    )
