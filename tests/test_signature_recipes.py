"""The signature verification recipes of docs/webhooks.md, Python and Node.js, run as written
against requests callflowd really sent (a POST with a body, a GET with a query that needs
percent-encoding), seen byte for byte by a raw receiver; and refused when replayed elsewhere."""

import json
import pathlib
import re
import shutil
import subprocess

import pytest

from callflowd.retry import Retry
from callflowd.webhooks import delivery
from callflowd.webhooks.request import WebhookRequest
from tests.doubles.raw_http import RawReceiver

pytestmark = pytest.mark.timeout(30)

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"
SECRET = "whsec-Zoë-42"


def recipe(language):
    """The code block of ``language`` in the Signing section of docs/webhooks.md."""
    section = DOC.read_text().split("## Signing", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```%s\n(.*?)```" % language, section, re.S)
    return code


@pytest.fixture(scope="module")
def sent():
    """(method, host, target, body, signature) of two requests callflowd sent."""
    server = RawReceiver()
    client = delivery.make_client()
    try:
        for method, uri in (("post", server.url("/hooks/in")),
                            ("get", server.url("/hooks/in?list=[a]|b&name=Zoë&pct=5%"))):
            request = WebhookRequest(call_id="c0ffee", uri=uri, method=method, retry=Retry(total=0),
                                     fields=(("caller_id_name", "Zoë & Ann"), ("n", "1")))
            assert delivery.attempt(client, request, 2.0, secret=SECRET).outcome is delivery.Outcome.DELIVERED
    finally:
        server.stop()
    return [(r.request_line.split()[0], r.header("Host"), r.request_line.split()[1], r.body,
             r.header("X-Callflowd-Signature")) for r in server.requests]


def cases(sent):
    """Each request as sent (True), then replayed to another path and another host (False)."""
    for method, host, target, body, signature in sent:
        yield (method, host, target, body, signature), True
        yield (method, host, "/elsewhere" + target[len("/hooks/in"):], body, signature), False
        yield (method, "other.example", target, body, signature), False
        yield (method, host, target, body + b"&x=1", signature), False


def test_the_python_recipe_verifies_what_was_sent_and_nothing_else(sent):
    namespace = {}
    exec(recipe("python"), namespace)  # noqa: S102 - the documented recipe, as written
    for (method, host, target, body, signature), expected in cases(sent):
        assert namespace["verify"](SECRET, signature, method, host, target, body) is expected, (method, target)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_recipe_verifies_what_was_sent_and_nothing_else(sent, tmp_path):
    checks = [{"method": m, "host": h, "target": t, "body": b.decode("latin-1"), "signature": s, "expected": e}
              for (m, h, t, b, s), e in cases(sent)]
    script = tmp_path / "verify.js"
    script.write_text(recipe("js") + """
const checks = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(checks.map((c) =>
  verify(%s, c.signature, c.method, c.host, c.target, Buffer.from(c.body, "latin1")))));
""" % json.dumps(SECRET))
    done = subprocess.run(["node", str(script)], input=json.dumps(checks), capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [check["expected"] for check in checks]
