"""sealbot.store"""
