"""The examples in the user docs are real configs: they parse, and the DCA table matches."""

from __future__ import annotations

import json
import re
from decimal import Decimal as D
from pathlib import Path

from sealbot.bots import dca, smart

DOCS = Path(__file__).resolve().parents[2] / "docs"


def example(name: str) -> dict[str, object]:
    text = (DOCS / name).read_text()
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block is not None
    data: dict[str, object] = json.loads(block.group(1))
    return data


def test_the_dca_doc_example_parses_and_matches_its_table() -> None:
    cfg = dca.DcaConfig.model_validate(example("bots-dca.md"))
    table = dca.preview(cfg, D(100))
    assert table.max_funds_quote == D(630)
    assert [r.price for r in table.rows] == [D(100), D(99), D("97.5"), D("95.25"), D("91.87"), D("86.81")]
    assert [round(r.average_price, 2) for r in table.rows] == [
        D(100),
        D("99.33"),
        D("98.28"),
        D("96.64"),
        D("94.12"),
        D("90.26"),
    ]


def test_the_smart_trade_doc_example_parses() -> None:
    cfg = smart.SmartTradeConfig.model_validate(example("smart-trade.md"))
    p = smart.preview(cfg, D(43000))
    assert p.entry_price == D(42000)
    assert [t.price for t in p.targets] == [D(42840), D(46000)]
    assert p.stop_price == D(40740)
