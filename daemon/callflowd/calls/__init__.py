"""Live calls: the per-call object actions talk to, and the router that feeds it events."""
