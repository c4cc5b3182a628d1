"""The event-socket layer: wire format, FreeSWITCH names, and the greenswitch seam."""
