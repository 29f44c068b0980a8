"""sealbot.backtest"""
