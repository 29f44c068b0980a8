"""Backtesting: the same bots as live trading, over recorded candles, fast, with reports.

* ``data``: load (feather, parquet, CSV, CSV.gz), validate, clean, resample candles.
* ``fills``: the documented fill model (intra-candle path, limits, stops, fees, rules).
* ``simulate.run``: a bot's own ``step`` over one or many pairs, skipping the candles its
  ``interest`` says cannot matter; its parts are ``book`` (one pair's order book),
  ``orders`` (the simulated exchange desk and account) and ``kernel`` (the time loop).
* ``metrics``: ``Result`` (orders, fills, deals, equity) and its ``Metrics``.
* ``sweep``: grid / seeded random parameter search over all cores, ranked.
* ``report``: HTML report (plotly, offline) and JSON result.
* ``runner``: bot file + data files -> result, report, sweep (what the CLI calls).
* ``download``: resumable candle download through a ``Venue``.

See docs/backtesting.md.
"""
