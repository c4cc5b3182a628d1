"""One decoded event-socket frame."""


class Event:
    """Headers (decoded values) and an optional body of one event or reply.

    ``headers`` maps each header name to its value exactly as FreeSWITCH meant
    it (percent-decoding done per value, after the lines were split), so a
    caller-controlled value can never add or replace another header.
    """

    __slots__ = ("headers", "body", "content_type")

    def __init__(self, headers, body=None, content_type=None):
        self.headers = headers
        self.body = body
        self.content_type = content_type

    def get(self, name, default=None):
        return self.headers.get(name, default)

    def __getitem__(self, name):
        return self.headers[name]

    def __contains__(self, name):
        return name in self.headers

    @property
    def name(self):
        return self.headers.get("Event-Name")

    @property
    def uuid(self):
        return self.headers.get("Unique-ID")

    def __repr__(self):
        return "<Event %s %s>" % (self.name or self.content_type, self.uuid or "")
