"""One load's problems: every ``ConfigError`` found, and the documents they refused.

A load (flow/load.py) reads every Kazoo document and every callflow document before it
says no, so one ``callflowd check`` names every problem. A refused document is left out
of its table and its ids are remembered here by kind (``user``, ``voicemail box``,
``callflow``: the kinds of ``config.model.Reference``); a problem that only says such an
id is unknown (its ``reference``) is then already explained and is not listed a second
time: the broken document's own problem is the one that matters.
"""

import contextlib

from callflowd.errors import ConfigError, ConfigErrors

ALL = None  # refuse(kind, ALL): the whole table of that kind was refused (``users:`` not a list)


class Problems:
    """Collects problems; ``raise_if_any()`` raises them together (one ConfigError, or
    ConfigErrors when there are several, in the order found)."""

    def __init__(self):
        self._found = []
        self._refused = {}  # kind -> set of ids, or ALL

    def add(self, error, kind=None, ids=()):
        """Record ``error`` (a ConfigError or ConfigErrors), and that the document it refused
        was of ``kind`` with these ``ids`` (or ``ALL``, the whole table)."""
        if kind is not None:
            self.refuse(kind, ids)
        for problem in getattr(error, "problems", (error,)):
            reference = getattr(problem, "reference", None)
            if reference is not None and self.refused(*reference):
                continue  # "unknown user 'alice'": alice's own document was refused, and said why
            self._found.append(problem)

    @contextlib.contextmanager
    def collecting(self, kind=None, ids=()):
        """Run the block; a ConfigError it raises is added (its document refused), not raised."""
        try:
            yield
        except ConfigError as exc:
            self.add(exc, kind, ids)

    def refuse(self, kind, ids):
        if ids is ALL:
            self._refused[kind] = ALL
        elif self._refused.get(kind, ()) is not ALL:
            self._refused.setdefault(kind, set()).update(name for name in ids if name is not None)

    def refused(self, kind, name):
        """True when a document of ``kind`` named ``name`` was refused in this load."""
        ids = self._refused.get(kind, ())
        return ids is ALL or name in ids

    def __bool__(self):
        return bool(self._found)

    def raise_if_any(self):
        if self._found:
            raise self._found[0] if len(self._found) == 1 else ConfigErrors(self._found)
