"""How long a ``webhook`` step waits for its group commit (issue 14): the call's greenlet only.

    .venv/bin/python -m tests.benchmarks.bench_commit_wait

One webhook at a time (a quiet system: the wait is one SQLite commit on the store's thread), then
200 steps at once (a burst: they share one or two batches). The webhooks are never delivered
(their receiver is the discard port), so deliveries don't compete with the commits.
"""

import argparse
import json
import tempfile
import time

import gevent

from callflowd.config.model import WebhookSettings
from callflowd.retry import Retry
from callflowd.webhooks.dispatcher import WebhookDispatcher
from callflowd.webhooks.request import WebhookRequest

FIELDS = tuple(("field_%d" % n, "value %d" % n) for n in range(30))  # about a Kazoo webhook's


def quantile(values, share):
    values = sorted(values)
    return values[max(0, int(len(values) * share) - 1)] * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        dispatcher = WebhookDispatcher(WebhookSettings(timeout=1.0, max_age=3600), state)
        dispatcher.start()

        def step(n):
            request = WebhookRequest(call_id="c%d" % n, uri="http://127.0.0.1:9/x", method="get",
                                     fields=FIELDS, retry=Retry(total=2))
            started = time.perf_counter()
            dispatcher.submit_committed(request)
            return time.perf_counter() - started

        one = [step(n) for n in range(args.calls)]
        burst = [g.value for g in gevent.joinall([gevent.spawn(step, args.calls + n) for n in range(args.burst)])]
        dispatcher.stop(timeout=0.1)
    result = {"one_p50_ms": quantile(one, 0.5), "one_p99_ms": quantile(one, 0.99),
              "burst": args.burst, "burst_p50_ms": quantile(burst, 0.5), "burst_max_ms": max(burst) * 1e3}
    if args.json:
        print(json.dumps(result))
    else:
        print("one step at a time: commit wait p50 %(one_p50_ms).2f ms, p99 %(one_p99_ms).2f ms" % result)
        print("%(burst)d steps at once: p50 %(burst_p50_ms).1f ms, max %(burst_max_ms).1f ms" % result)


if __name__ == "__main__":
    main()
