"""sealbot.bots"""
