"""sealbot.custody"""
