"""Callflow documents into ``Callflow`` values: every node checked, every reference resolved.

``parse_callflows`` takes the documents ``config.documents`` read, unwraps Kazoo's API
envelope, parses each node with its action's ``Data.parse`` (``callflowd.actions``),
refuses a duplicate id or number, and then checks every ``Reference`` the actions
declare (``references(data)``: devices, boxes, other callflows...) against the
tables they name, once every document is read. The parser knows no action by name.

``parse_flow_json`` reads one flow that arrives while running (a ``pivot`` answer)
exactly as strictly, against the running config's directory.

Every problem is a ``ConfigError`` naming the file and the place inside it
(``callflows.d/front-desk.json: flow.children._.data.http_verb: must be one of get,
post``); every document is checked before they are raised together, and a node naming
a document that was itself refused (a user whose file is broken) is not a second problem.
A callflow has at most ``MAX_FLOW_NODES`` nodes and ``MAX_FLOW_DEPTH`` levels.
Unknown keys are refused in a node; a document's top level may carry Kazoo's others
(``id``, ``name``, ``metadata``...).
"""

from types import MappingProxyType

from callflowd.actions import REGISTRY
from callflowd.calls.routes import Normalizer
from callflowd.config import files
from callflowd.config.documents import check_json_shaped
from callflowd.config.fields import boolean, has_whitespace, join, kind, one_line, string_list
from callflowd.config.model import CALLFLOW, RoutingSettings
from callflowd.config.patterns import PatternError, compile_pattern
from callflowd.config.problems import Problems
from callflowd.errors import ConfigError, ConfigErrors, InvalidData
from callflowd.flow.model import Callflow, Node
from callflowd.logfmt import escape

MAX_FLOW_DEPTH = 100  # a flow deeper than this is a mistake, not a call plan
MAX_FLOW_NODES = 1000  # per callflow; Kazoo's own flows have tens
_NODE_KEYS = ("module", "data", "children")


def parse_callflows(documents, directory, routing=RoutingSettings(), warnings=None, problems=None):
    """The ``Callflow`` of each ``config.documents.Document``, in order.

    Every document is checked before anything is raised: one refused document does not
    hide the others' problems. Raises ConfigError (ConfigErrors when there are several),
    with the problems already in ``problems`` (config/problems.py: the Kazoo documents')
    first; a reference to a document refused there is not a second problem.
    ``warnings``, a list, gets one line per thing accepted but not run as Kazoo would
    (a module callflowd does not have, a key it does not honour).
    """
    callflows = []
    by_id = {}
    by_number = {}
    if problems is None:
        problems = Problems()
    normalize = Normalizer(routing.converters)
    if warnings is None:
        warnings = []
    for document in documents:
        raw, prefix = _unwrap(document.raw, document.prefix)
        source = document.source
        try:
            callflow = _callflow(raw, source, prefix, document.fallback_id, directory, warnings)
            if callflow.id in by_id:
                where = (join(prefix, "id" if raw.get("id") is not None else "_id")
                         if raw.get("id", raw.get("_id")) is not None else prefix or None)
                raise ConfigError("callflow id %r is already used in %s" % (
                    callflow.id, by_id[callflow.id].source), source, where)
            for index, number in enumerate(callflow.numbers):
                # two spellings of one number (4155552671, +14155552671) are one number once normalised
                key = number if number == "no_match" else normalize(number)
                other, spelled = by_number.get(key, (None, None))
                if other is not None:
                    raise ConfigError("number %r is already claimed by callflow %r (%s)%s" % (
                        number, other.id, other.source, "" if spelled == number else " as %r" % spelled),
                        source, "%s[%d]" % (join(prefix, "numbers"), index))
        except ConfigError as exc:  # and ConfigErrors: each of its problems
            ids = [document.fallback_id]
            if isinstance(raw, dict):
                ids.extend(raw.get(key) for key in ("id", "_id") if isinstance(raw.get(key), str))
            problems.add(exc, CALLFLOW, ids)
            continue
        by_id[callflow.id] = callflow
        for number in callflow.numbers:
            by_number[number if number == "no_match" else normalize(number)] = (callflow, number)
        callflows.append(callflow)
    tables = dict(directory.tables())
    tables[CALLFLOW] = by_id
    for callflow in callflows:
        for problem in _unknown_references(callflow.flow, tables, callflow.source, callflow.prefix):
            problems.add(problem)
    problems.raise_if_any()
    return tuple(callflows)


def _unwrap(raw, prefix):
    """Kazoo's API envelope ``{"data": {...callflow...}}``: the callflow inside, and its path.

    Only when the outer object is no callflow itself (no ``flow``, ``numbers`` or
    ``patterns``), so a callflow's own keys are never mistaken for an envelope.
    """
    if (isinstance(raw, dict) and isinstance(raw.get("data"), dict)
            and not any(key in raw for key in ("flow", "numbers", "patterns"))):
        return raw["data"], join(prefix, "data")
    return raw, prefix


def references_of(node):
    """The ``Reference`` values ``node``'s action declares (none if it declares no ``references``)."""
    declare = getattr(REGISTRY.get(node.module), "references", None)
    return tuple(declare(node.data)) if declare is not None else ()


def _unknown_references(flow, tables, source, prefix, unchecked=()):
    """A ConfigError for each id a node of ``flow`` names that is not in the table of its kind
    (but ``unchecked`` kinds); each carries its ``reference`` (config/problems.py)."""
    found = []
    pending = [flow]
    while pending:
        node = pending.pop()
        for reference in references_of(node):
            if reference.kind in unchecked:
                continue
            table = tables[reference.kind]  # a KeyError: an action declared a kind nobody holds
            if reference.id not in table:
                found.append(ConfigError("unknown %s %r (known: %s)" % (
                    reference.kind, reference.id, ", ".join(sorted(table)) or "none"),
                    source, join(prefix, "%s.data.%s" % (node.path, reference.key)),
                    reference=(reference.kind, reference.id)))
        pending.extend(node.children.values())
    return found


def _callflow(raw, source, prefix, fallback_id, directory, warnings):
    def fail(key, message):
        raise ConfigError(message, source, join(prefix, key) if key else prefix or None)

    if not isinstance(raw, dict):
        fail(None, "must be an object (a callflow document), not %s" % kind(raw))
    id_key = "id" if raw.get("id") is not None else "_id"  # the API's id, else CouchDB's (the same)
    doc_id = raw.get(id_key)
    if doc_id is None:
        doc_id = fallback_id
    elif not isinstance(doc_id, str) or not doc_id.strip():
        fail(id_key, "must be a non-empty string")
    try:
        numbers = string_list(raw, "numbers")
        patterns = string_list(raw, "patterns")
    except InvalidData as exc:
        fail(exc.key, exc.message)
    for index, number in enumerate(numbers):
        if has_whitespace(number):
            fail("numbers[%d]" % index, "must not contain whitespace")
        if number in numbers[:index]:
            fail("numbers[%d]" % index, "%r is listed twice" % number)
    for index, pattern in enumerate(patterns):
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            fail("patterns[%d]" % index, "invalid or unsafe regular expression: %s" % exc)
    if not numbers and not patterns:
        fail(None, "needs at least one number or pattern")
    if raw.get("flow") is None:
        fail("flow", "is required")
    problems = []
    flow = _node(raw["flow"], "flow", source, prefix, directory, 1, [0], warnings, problems)
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    return Callflow(id=doc_id, numbers=tuple(numbers), patterns=tuple(patterns),
                    flow=flow, source=source, prefix=prefix)


def _node(raw, node_path, source, prefix, directory, depth, count, warnings=None, problems=None):
    """One node and, recursively, its children; ``node_path`` is relative to the document.

    ``count`` is a one-item list: the nodes of this flow built so far. ``warnings`` gets a
    line per thing accepted but not run as Kazoo would; ``problems`` (a list) collects a
    node's refused ``data`` and the walk goes on with its children, so one run names every
    bad node (the caller raises them); without it the first problem raises.
    """
    where = join(prefix, node_path)
    if warnings is None:
        warnings = []

    def fail(key, message):
        raise ConfigError(message, source, join(where, key) if key else where)

    def warn(key, message):
        warnings.append(str(ConfigError(message, source, join(where, key) if key else where)))

    if depth > MAX_FLOW_DEPTH:
        fail(None, "the flow is more than %d nodes deep" % MAX_FLOW_DEPTH)
    count[0] += 1
    if count[0] > MAX_FLOW_NODES:
        fail(None, "the flow has more than %d nodes" % MAX_FLOW_NODES)
    if not isinstance(raw, dict):
        fail(None, "must be an object, not %s" % kind(raw))
    unknown = [key for key in raw if key not in _NODE_KEYS]
    if unknown:
        fail(None, "unknown key%s %s (known: %s)" % (
            "s" if len(unknown) > 1 else "", ", ".join(repr(k) for k in unknown), ", ".join(_NODE_KEYS)))

    module = raw.get("module")
    if module is None:
        fail("module", "is required")
    if not isinstance(module, str):
        fail("module", "must be a string")
    action = REGISTRY.get(module)

    data = raw.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail("data", "must be an object")
    try:
        skip = boolean(data, "skip_module", False)  # kz_json:is_true: "true" too
    except InvalidData as exc:
        fail("data.skip_module", exc.message)
    rest = {key: value for key, value in data.items() if key != "skip_module"}
    parsed = None
    if action is None:
        # cf_exe: a module it has not got is "unknown callflow action": the call goes on at _.
        warn("module", "callflowd has no module %r: a call reaching this node goes on at _, as in "
             "Kazoo (known: %s)" % (escape(module, 60), ", ".join(sorted(REGISTRY))))
        skip = True
    else:
        _warn_unsupported(action, module, rest, warn)
        try:
            parsed = action.Data.parse(rest, directory)
        except InvalidData as exc:
            place = join(where, join("data", exc.key) if exc.key else "data")
            problem = ConfigError(exc.message, source, place, reference=exc.reference)
            if problems is None:
                raise problem from None
            problems.append(problem)
        except (ValueError, TypeError) as exc:
            # Data.parse should raise InvalidData for every bad input; this is the safety net.
            problem = ConfigError("invalid data: %s" % one_line(str(exc)), source, join(where, "data"))
            if problems is None:
                raise problem from None
            problems.append(problem)

    children_raw = raw.get("children")
    if children_raw is None:
        children_raw = {}
    if not isinstance(children_raw, dict):
        fail("children", "must be an object")
    children = {}
    for key, child in children_raw.items():
        if not isinstance(key, str) or not key:
            fail("children", "key %r must be a non-empty string" % (key,))
        children[key] = _node(child, "%s.children.%s" % (node_path, key), source, prefix,
                              directory, depth + 1, count, warnings, problems)
    with_branch_keys = getattr(action, "with_branch_keys", None)  # actions that branch on names they know
    if with_branch_keys is not None and parsed is not None:
        try:
            parsed = with_branch_keys(parsed, tuple(children), directory)
        except InvalidData as exc:
            problem = ConfigError(exc.message, source, join(where, exc.key) if exc.key else where,
                                  reference=exc.reference)
            if problems is None:
                raise problem from None
            problems.append(problem)
    return Node(module=module, data=parsed, children=MappingProxyType(children), skip=skip,
                path=node_path)


def _warn_unsupported(action, module, data, warn):
    """A line for each ``data`` key the action does not honour (its ``SUPPORTED``): a key of
    Kazoo's schema it does not do (``NOT_SUPPORTED``), or a key neither knows."""
    supported = getattr(action, "SUPPORTED", None)
    if supported is None:
        return
    not_supported = getattr(action, "NOT_SUPPORTED", ())
    for key in data:
        if key in supported:
            continue
        if key in not_supported:
            warn(join("data", key), "not supported by callflowd (a Kazoo %s key): accepted and ignored" % module)
        else:
            warn(join("data", key), "not a key of Kazoo's %s (known: %s): ignored" % (
                module, ", ".join(tuple(supported) + tuple(not_supported))))


def parse_flow(raw, directory, source):
    """One flow node and its children, checked exactly as a callflow document's ``flow``.

    For flows that arrive while running (a ``pivot`` answer): ``directory`` is
    the running config's, ``source`` names where the flow came from in errors
    (``answer: flow.children._.data.id: unknown device 'x'``). Paths start at
    ``flow``. Raises ConfigError.
    """
    if raw is None:
        raise ConfigError("is required", source, "flow")
    check_json_shaped(raw, source, "flow", 0)
    flow = _node(raw, "flow", source, "", directory, 1, [0])
    # A fetched flow's jumps are checked when taken (the executor holds the callflows).
    unknown = _unknown_references(flow, directory.tables(), source, "", unchecked=(CALLFLOW,))
    if unknown:
        raise unknown[0]
    return flow


def parse_flow_json(text, directory, source):
    """``parse_flow`` of a JSON text, read as strictly as a callflow document (no duplicate
    keys, no NaN, bounded numbers). A ``{"flow": {...}}`` wrapper is accepted."""
    raw = files.parse_json(text, source)
    if isinstance(raw, dict) and "module" not in raw and "flow" in raw:
        raw = raw["flow"]
    return parse_flow(raw, directory, source)
