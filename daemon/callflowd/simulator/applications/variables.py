"""``set``, ``multiset``, ``unset``, ``export`` (mod_dptools): channel variables, no events of
their own.

``set name=value`` (``name=`` or ``name`` alone unsets); ``multiset name=value name=value``,
or ``^^<delimiter>`` first to split on another character; ``unset name``; ``export
name[=value]`` also adds the name to ``export_vars``. A set is delete + append
(switch_channel_set_variable), so the variable moves to the end of the next event's list.
"""


# Named as the applications; ``set`` shadows the builtin here, which this module never uses.
def set(call, data):  # noqa: A001
    name, sep, value = (data or "").partition("=")
    if name.strip():
        call.leg.set_var(name.strip(), value if sep and value != "" else None)


def multiset(call, data):
    data = data or ""
    delimiter = " "
    if data.startswith("^^") and len(data) > 2:
        delimiter, data = data[2], data[3:]
    for item in data.split(delimiter):
        if item:
            set(call, item)


def unset(call, data):
    if data:
        call.leg.set_var(data.strip(), None)


def export(call, data):
    name, sep, value = (data or "").partition("=")
    name = name.strip()
    if not name:
        return
    call.leg.set_var(name, value if sep else None)
    exported = [n for n in (call.leg.get_var("export_vars") or "").split(",") if n]
    if name not in exported:
        exported.append(name)
    call.leg.set_var("export_vars", ",".join(exported))
