"""The ``callflowd demo`` command: the example callflow against the simulator and a local webhook receiver."""
