"""The 3Commas worked example: base 10, safety 20, deviation 1 %, volume scale 2, step
scale 1.5, 5 safety orders, take profit 1 % of total volume, first price 100.

Spreadsheet derivation (deviation d_n = 1 * (1 + 1.5 + ... + 1.5^(n-1)) %, volume
v_n = 20 * 2^(n-1), price p_n = 100 * (1 - d_n / 100), base b_n = v_n / p_n,
average = sum(v) / sum(b), take profit = average * 1.01):

  order  d_n      p_n       v_n  b_n = v_n/p_n       sum v  sum b          average        TP (avg*1.01)
  bo     0        100       10   0.1               10     0.1            100            101
  so1    1        99        20   0.2020202020     30     0.3020202020   99.3311036789  100.3244147157
  so2    2.5      97.5      40   0.4102564103     70     0.7122766123   98.2764263118  99.2591905749
  so3    4.75     95.25     80   0.8398950131     150    1.5521716254   96.6387978915  97.6051858704
  so4    8.125    91.875    160  1.7414965986     310    3.2936682240   94.1199838337  95.0611836720
  so5    13.1875  86.8125   320  3.6861051116     630    6.9797733356   90.2608107321  91.1634188394

  max funds = 10 + 20 + 40 + 80 + 160 + 320 = 630 USDT
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bots_dca.dca_factory import CENT_MARKET, config
from sealbot.bots import dca
from sealbot.domain import InvalidConfig

SPREADSHEET = [
    # order, deviation, price, volume, base, cumulative volume, average, take profit
    ("bo", "0", "100", "10", "0.1", "10", "100", "101"),
    ("so1", "1", "99", "20", "0.2020202020", "30", "99.3311036789", "100.3244147157"),
    ("so2", "2.5", "97.5", "40", "0.4102564103", "70", "98.2764263118", "99.2591905749"),
    ("so3", "4.75", "95.25", "80", "0.8398950131", "150", "96.6387978915", "97.6051858704"),
    ("so4", "8.125", "91.875", "160", "1.7414965986", "310", "94.1199838337", "95.0611836720"),
    ("so5", "13.1875", "86.8125", "320", "3.6861051116", "630", "90.2608107321", "91.1634188394"),
]


def test_worked_example_matches_the_spreadsheet() -> None:
    table = dca.preview(config(), D(100))
    assert [r.order for r in table.rows] == [row[0] for row in SPREADSHEET]
    for row, (_name, dev, price, vol, base, cum, avg, tp) in zip(table.rows, SPREADSHEET, strict=True):
        assert row.deviation_pct == D(dev)
        assert row.price == D(price)
        assert row.volume_quote == D(vol)
        # Amounts are floored to the 1e-8 step, so they sit at most one step below the sheet.
        assert D(base) - D("0.00000001") <= row.amount_base <= D(base) + D("0.0000000001")
        # Each floored amount costs at most 1e-8 * 100 quote, so the sums stay within 1e-5.
        assert D(cum) - D("0.00001") <= row.cumulative_quote <= D(cum)
        assert abs(row.average_price - D(avg)) < D("0.000001")
        assert abs(row.take_profit_prices[0] - D(tp)) < D("0.000001")
    assert table.max_funds_quote == D(630)
    assert abs(table.max_funds_base - D("6.9797733356")) < D("0.0000001")


def test_preview_rounds_like_the_exchange() -> None:
    # tick 0.01, step 0.0001: so4 at 91.875 is a buy, so its price floors to 91.87;
    # 160 / 91.87 = 1.741591... floors to 1.7415; so5 at 86.8125 floors to 86.81.
    table = dca.preview(config(markets=[CENT_MARKET]), D(100))
    so4, so5 = table.rows[4], table.rows[5]
    assert (so4.price, so4.amount_base) == (D("91.87"), D("1.7415"))
    assert so5.price == D("86.81")
    assert so5.amount_base == D("3.6862")  # 320 / 86.81 = 3.68621...
    # The take profit is a sell: it rounds up, never asking less than the target.
    assert so4.take_profit_prices[0] * 100 % 1 == 0
    assert so4.take_profit_prices[0] >= so4.average_price * D("1.01")


def test_take_profit_of_base_order_volume() -> None:
    # "base": profit = 1 % of the base order (0.10 USDT) whatever was bought, so after so1
    # the target is (30 + 0.1) / 0.3020202020 = 99.662207 instead of 100.324415.
    table = dca.preview(config(take_profit_type="base"), D(100))
    assert abs(table.rows[1].take_profit_prices[0] - D("99.6622073579")) < D("0.000001")


def test_short_preview_places_safety_orders_above() -> None:
    # A short sells first: so1 sits 1 % above (101), so2 2.5 % above (102.5); its take
    # profit is 1 % below the average sell price.
    table = dca.preview(config(strategy="short"), D(100))
    assert [r.price for r in table.rows[:3]] == [D(100), D(101), D("102.5")]
    avg = table.rows[1].average_price
    assert abs(table.rows[1].take_profit_prices[0] - avg * D("0.99")) < D("0.0000001")


def test_ladder_preview_has_one_price_per_target() -> None:
    steps = [
        {"amount_percentage": "50", "profit_percentage": "1"},
        {"amount_percentage": "50", "profit_percentage": "2"},
    ]
    table = dca.preview(config(take_profit_steps=steps), D(100))
    assert table.rows[0].take_profit_prices == (D(101), D(102))


def test_preview_refuses_a_nonpositive_price() -> None:
    with pytest.raises(InvalidConfig) as info:
        dca.preview(config(), D(0))
    assert info.value.field == "price"


def test_preview_is_json_safe() -> None:
    data = dca.preview(config(), D(100)).to_dict()
    assert data["max_funds_quote"] == "630"
    assert data["rows"][1]["price"] == "99.00000000"
