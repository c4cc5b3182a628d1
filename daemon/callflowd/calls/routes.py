"""Which callflow answers a dialled number: exact numbers first, then patterns (RE2, linear time)."""

from callflowd.flow.patterns import compile_pattern


def normalize(number):
    """A North-American-style E.164 guess, as Kazoo's default converter does.

    ``5551234567`` and ``15551234567`` become ``+15551234567``; anything else is kept.
    """
    if number.startswith("+"):
        return number
    if number.isdigit():
        if len(number) == 10:
            return "+1" + number
        if len(number) == 11 and number.startswith("1"):
            return "+" + number
    return number


class RouteTable:
    """Built once from the validated callflows; lookups are a dict hit or a few regexes."""

    def __init__(self, callflows):
        self._by_number = {}
        self._patterns = []
        self.by_id = {callflow.id: callflow for callflow in callflows}
        for callflow in callflows:
            for number in callflow.numbers:
                self._by_number[number] = callflow
            for pattern in callflow.patterns:
                self._patterns.append((compile_pattern(pattern), callflow))

    def lookup(self, number):
        if not number:
            return None
        callflow = self._by_number.get(number) or self._by_number.get(normalize(number))
        if callflow is not None:
            return callflow
        for regex, callflow in self._patterns:
            if regex.match(number):
                return callflow
        return None

    def __len__(self):
        return len(self._by_number)
