"""``menu``: an IVR menu: play a greeting, collect the caller's keys, branch on them.

data (Kazoo 4.3 menu keys, given inline on the node):
  ``greeting``              media played while waiting for keys (see actions/media.py; no spaces)
  ``retries``               tries before giving up, 1-10 (default 3)
  ``timeout``               ms to wait for the first key after the greeting (default 10000)
  ``interdigit_timeout``    ms to wait for each further key (default 2000)
  ``max_extension_length``  keys collected at most, 1-32 (default 4); ``#`` ends an entry early
  ``invalid_media``         played when the keys match no child (default: nothing)

Branches: the child keyed by exactly the keys pressed (``"1"``, ``"42"``); no key at all ->
``timeout`` if the node has that child (else the try counts as used); keys with no child ->
``invalid_media`` and another try; tries used up -> ``max_retries``, else ``_``.

FreeSWITCH facts: ``play_and_get_digits <min> <max> <tries> <timeout> <terminators> <file>
<invalid_file> <var_name> <regexp> <digit_timeout>`` (mod_dptools) answers with the keys in
channel variable ``var_name`` on its EXECUTE_COMPLETE (``variable_esl_digits: 123``,
``variable_read_result: success`` in tests/fixtures/f_dtmf_play_and_get_digits.plain.txt); input that fails the regexp leaves ``var_name``
unset and goes to ``<var_name>_invalid``. We run it one try at a time and clear both
variables before each (``uuid_setvar_multi``), so a stale value can't be read as a press.
"""

import dataclasses

from callflowd.actions import media
from callflowd.actions.outcome import DEFAULT
from callflowd.config import fields
from callflowd.esl import names

TIMEOUT = "timeout"
MAX_RETRIES = "max_retries"
VARIABLE = "callflowd_menu_digits"
TERMINATORS = "#"
KEYS_PATTERN = "^[0-9*]+$"
SILENCE = "silence_stream://250"
# The greeting plays before the first key is awaited; its length is unknown, the wait is bounded.
_GREETING_ALLOWANCE_SECONDS = 300


@dataclasses.dataclass(frozen=True)
class Data:
    greeting: str
    retries: int
    timeout: int
    interdigit_timeout: int
    max_extension_length: int
    invalid_media: str

    @classmethod
    def parse(cls, raw, directory):
        return cls(
            greeting=media.reference(raw, "greeting", spaces=False),
            retries=fields.integer_in(raw, "retries", 3, 1, 10),
            timeout=fields.integer_in(raw, "timeout", 10000, 100, 600000),
            interdigit_timeout=fields.integer_in(raw, "interdigit_timeout", 2000, 100, 60000),
            max_extension_length=fields.integer_in(raw, "max_extension_length", 4, 1, 32),
            invalid_media=media.reference(raw, "invalid_media"),
        )

    def argument(self):
        return " ".join(str(part) for part in (
            1, self.max_extension_length, 1, self.timeout, TERMINATORS, self.greeting or SILENCE,
            SILENCE, VARIABLE, KEYS_PATTERN, self.interdigit_timeout))

    def wait_seconds(self):
        return (self.timeout + self.interdigit_timeout * self.max_extension_length) / 1000 \
            + _GREETING_ALLOWANCE_SECONDS


# Its first effect is answer: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


# The FreeSWITCH applications it runs, and those a recovery mark names while they run (actions/__init__.py).
APPLICATIONS = ("answer", "play_and_get_digits", "playback")
LONG_APPLICATIONS = ("play_and_get_digits", "playback")


def handle(call, data):
    call.answer()
    for attempt in range(1, data.retries + 1):
        if call.resuming is None:  # taken back after a restart, the switch may hold the answer already
            call.clear_variables(VARIABLE, VARIABLE + "_invalid")
        done = call.execute("play_and_get_digits", data.argument(), timeout=data.wait_seconds())
        keys = done.get(names.variable(VARIABLE)) or done.get(names.variable(VARIABLE + "_invalid")) or ""
        if keys and keys in call.position.branches:
            call.log.info("menu: caller pressed %s", keys)
            return keys
        if not keys:
            call.log.info("menu: no key pressed (try %d of %d)", attempt, data.retries)
            if TIMEOUT in call.position.branches:
                return TIMEOUT
            continue
        call.log.info("menu: %s is not an option (try %d of %d)", keys, attempt, data.retries)
        if data.invalid_media:
            call.execute("playback", data.invalid_media, timeout=_GREETING_ALLOWANCE_SECONDS)
    call.log.info("menu: no valid choice after %d tries", data.retries)
    return MAX_RETRIES, DEFAULT
