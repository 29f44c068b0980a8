"""sealbot.simex"""
