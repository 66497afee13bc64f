"""Consent per channel and purpose, double opt-in, unsubscribes and suppression lists."""
