"""sealbot.audit"""
