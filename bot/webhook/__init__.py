"""Webhook intake: verify, parse, store."""
