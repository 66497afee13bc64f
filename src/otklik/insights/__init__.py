"""Customer models on order history: RFM, churn rules, BG/NBD P(alive) and Gamma-Gamma CLV.

Pure numpy/scipy on arrays, with no store or HTTP: the segments and analytics domains feed it
orders and keep the scores it returns. Start with :func:`summary.summarize`.
"""
