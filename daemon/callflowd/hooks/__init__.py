"""Lifecycle hooks: channel events sent as webhooks through the durable outbox."""
