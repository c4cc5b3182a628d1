"""``menu``: an IVR menu: play a greeting, collect the caller's keys, branch on them.

data (Kazoo 4.3 ``callflows.menu``):
  ``id``                    a menu document (``menus:`` or ``menus/*.json``), read as Kazoo's
                            cf_menu reads it: ``media.greeting``, ``retries`` (3), ``timeout``
                            (10000 ms), ``max_extension_length`` (4), ``hunt``, ``hunt_allow``,
                            ``hunt_deny``, ``media.invalid_media`` / ``media.exit_media`` /
                            ``media.transfer_media`` (absent or true: Kazoo's prompt; false: none)
  ``interdigit_timeout``    ms to wait for each further key (the document's, else this, else 2000)
Our extension, for a menu given inline (no ``id``; Kazoo's defaults otherwise, no prompts):
  ``greeting``, ``retries`` (1-10), ``timeout``, ``max_extension_length`` (1-32),
  ``invalid_media`` (default: nothing)
  not supported (accepted, ``check`` warns, documents only): ``record_pin`` and
  ``allow_record_from_offnet`` (recording a greeting from the phone), ``suppress_media``

Media are media ids (``media:``), files, URLs or tone streams (actions/media.py). Kazoo's own
prompts (``menu-no_prompt``, ``menu-invalid_entry``, ``menu-exit``, ``menu-transferring_call``,
``vm-goodbye``) are FreeSWITCH sound files: ``<prompts_dir>/<name>.wav`` when ``prompts_dir`` is
set, else FreeSWITCH's stock sounds of the same meaning (``PROMPTS``).

Branches (cf_menu.erl): the child keyed by exactly the keys pressed (``"1"``, ``"42"``); keys
with no child and ``hunt`` on (allowed by ``hunt_allow``, not refused by ``hunt_deny``): the
callflow whose number they are, if any (the flow goes on there and does not come back); no
key at all -> ``timeout`` if the node has that child, else the try is used; keys with no
child -> the invalid prompt and another try; tries used up -> the exit prompt, then
``max_retries``, else ``_``.

FreeSWITCH facts: ``play_and_get_digits <min> <max> <tries> <timeout> <terminators> <file>
<invalid_file> <var_name> <regexp> <digit_timeout>`` (mod_dptools) answers with the keys in
channel variable ``var_name`` on its EXECUTE_COMPLETE (``variable_esl_digits: 123``,
``variable_read_result: success`` in tests/fixtures/f_dtmf_play_and_get_digits.plain.txt); input that fails the regexp leaves ``var_name``
unset and goes to ``<var_name>_invalid``. We run it one try at a time and clear both
variables before each (``uuid_setvar_multi``), so a stale value can't be read as a press.
"""

import dataclasses

from callflowd.actions import media
from callflowd.config import fields
from callflowd.actions.outcome import DEFAULT, Jump
from callflowd.config.model import Reference
from callflowd.config.patterns import compile_pattern
from callflowd.errors import InvalidData
from callflowd.esl import names

TIMEOUT = "timeout"
MAX_RETRIES = "max_retries"
VARIABLE = "callflowd_menu_digits"
TERMINATORS = "#"
KEYS_PATTERN = "^[0-9*]+$"
SILENCE = "silence_stream://250"
# The greeting plays before the first key is awaited; its length is unknown, the wait is bounded.
_GREETING_ALLOWANCE_SECONDS = 300
DEFAULT_INTERDIGIT = 2000  # kapps_call_command:default_interdigit_timeout()
SUPPORTED = ("id", "interdigit_timeout", "greeting", "retries", "timeout", "max_extension_length",
             "invalid_media")
NOT_SUPPORTED = ()
# Kazoo prompt -> FreeSWITCH stock sound (relative to the sound prefix) when no prompts_dir is set.
PROMPTS = {
    "menu-no_prompt": SILENCE,
    "menu-invalid_entry": "ivr/ivr-that_was_an_invalid_entry.wav",
    "menu-exit": "voicemail/vm-goodbye.wav",
    "menu-transferring_call": "ivr/ivr-hold_connect_call.wav",
    "vm-goodbye": "voicemail/vm-goodbye.wav",
}


def prompt(name, prompts_dir):
    return "%s/%s.wav" % (prompts_dir.rstrip("/"), name) if prompts_dir else PROMPTS[name]


@dataclasses.dataclass(frozen=True)
class Data:
    greeting: str
    retries: int
    timeout: int
    interdigit_timeout: int
    max_extension_length: int
    invalid_media: str | None
    exit_media: str | None = None
    transfer_media: str | None = None
    goodbye: str | None = None  # played when the tries are used up and the node has no _ child
    hunt: bool = False
    hunt_allow: object = None  # compiled RE2, or None
    hunt_deny: object = None
    menu_id: str = ""
    numbers: object = None  # number -> callflow id, every callflow's (Directory.callflow_numbers)

    @classmethod
    def parse(cls, raw, directory):
        node_interdigit = fields.integer_in(raw, "interdigit_timeout", None, 1, 600000) \
            if raw.get("interdigit_timeout") is not None else None
        if raw.get("id") is None:
            return cls(
                greeting=directory.media_path(media.reference(raw, "greeting", spaces=False)),
                retries=fields.integer_in(raw, "retries", 3, 1, 10),
                timeout=fields.integer_in(raw, "timeout", 10000, 100, 600000),
                interdigit_timeout=node_interdigit or DEFAULT_INTERDIGIT,
                max_extension_length=fields.integer_in(raw, "max_extension_length", 4, 1, 32),
                invalid_media=directory.media_path(media.reference(raw, "invalid_media")),
            )
        menu = fields.known_id(raw, "id", directory.menus, "menu")
        prompts_dir = getattr(directory, "prompts_dir", "")

        def chosen(value, name):
            if value is True:
                return prompt(name, prompts_dir)
            if value is False:
                return None
            return directory.media_path(value)

        greeting = directory.media_path(menu.greeting) if menu.greeting else prompt("menu-no_prompt", prompts_dir)
        if " " in greeting:
            raise InvalidData("id", "menu %s: its greeting %r has a space (play_and_get_digits splits its "
                              "argument on spaces)" % (menu.id, greeting))
        return cls(
            greeting=greeting, retries=menu.retries, timeout=menu.timeout,
            interdigit_timeout=menu.interdigit_timeout or node_interdigit or DEFAULT_INTERDIGIT,
            max_extension_length=menu.max_extension_length,
            invalid_media=chosen(menu.invalid_media, "menu-invalid_entry"),
            exit_media=chosen(menu.exit_media, "menu-exit"),
            transfer_media=chosen(menu.transfer_media, "menu-transferring_call"),
            goodbye=prompt("vm-goodbye", prompts_dir),
            hunt=menu.hunt,
            hunt_allow=compile_pattern(menu.hunt_allow) if menu.hunt_allow else None,
            hunt_deny=compile_pattern(menu.hunt_deny) if menu.hunt_deny else None,
            menu_id=menu.id,
            numbers=directory.callflow_numbers,
        )

    def argument(self):
        return " ".join(str(part) for part in (
            1, self.max_extension_length, 1, self.timeout, TERMINATORS, self.greeting or SILENCE,
            SILENCE, VARIABLE, KEYS_PATTERN, self.interdigit_timeout))

    def wait_seconds(self):
        return (self.timeout + self.interdigit_timeout * self.max_extension_length) / 1000 \
            + _GREETING_ALLOWANCE_SECONDS

    def may_hunt(self, keys):
        """cf_menu ``is_hunt_enabled``, ``is_hunt_allowed``, ``is_hunt_denied``."""
        return (self.hunt and (self.hunt_allow is None or self.hunt_allow.search(keys) is not None)
                and (self.hunt_deny is None or self.hunt_deny.search(keys) is None))


def references(data):
    return (Reference("menu", data.menu_id),) if data.menu_id else ()


# Its first effect is answer: the step's recovery mark rides ahead of it (actions/__init__.py).
FIRST_EFFECT_IS_A_COMMAND = True


def _play(call, what):
    if what:
        call.execute("playback", what, timeout=_GREETING_ALLOWANCE_SECONDS)


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
        target = (data.numbers or {}).get(keys) if data.may_hunt(keys) else None
        if target is not None:  # cf_menu hunt_for_callflow: the flow goes on there, for good
            call.log.info("menu: %s is callflow %s's number (hunt)", keys, target)
            _play(call, data.transfer_media)
            return Jump(target, back=False)
        call.log.info("menu: %s is not an option (try %d of %d)", keys, attempt, data.retries)
        _play(call, data.invalid_media)
    call.log.info("menu: no valid choice after %d tries", data.retries)
    _play(call, data.exit_media)
    if MAX_RETRIES not in call.position.branches:
        _play(call, data.goodbye if DEFAULT not in call.position.branches else data.transfer_media)
    return MAX_RETRIES, DEFAULT
