"""Otklik: a self-hosted omnichannel customer engagement platform."""

__version__ = "0.1.0"
