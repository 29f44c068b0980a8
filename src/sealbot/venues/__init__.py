"""sealbot.venues"""
