"""sealbot.web"""
