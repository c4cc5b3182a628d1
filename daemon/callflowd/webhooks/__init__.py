"""Webhook delivery, apart from the call, through a durable outbox.

``request`` (the value), ``wire`` (formats, headers, signing via ``signing``),
``delivery`` (one attempt and its outcome), ``store`` (the SQLite file),
``outbox`` (group commit), ``breaker`` (per-endpoint circuit breaker),
``dispatcher`` (lanes, concurrency, retries, start/stop), ``process`` and
``__main__`` (delivery in a process of its own).
"""
