"""sealbot.services"""
