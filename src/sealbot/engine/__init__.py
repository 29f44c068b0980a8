"""sealbot.engine"""
