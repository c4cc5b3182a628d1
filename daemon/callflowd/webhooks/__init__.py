"""Webhook delivery, apart from the call: requests, the dispatcher and its workers."""
