"""The one delivery pipeline: consent and policy gates, rendering, sending, receipts."""
