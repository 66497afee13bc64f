"""Shared helpers for the otklik test suite (throwaway servers, fixtures' building blocks)."""
