"""Durable webhook deliveries per second, beside a bare ``requests.Session`` loop, in the same run.

Run: ``.venv/bin/python -m tests.benchmarks.bench_webhook_outbox`` (from the repo root).

The receiver is a keep-alive HTTP/1.1 server (``callflowd.demo.receiver``) in a process of
its own, so the figures are the client's. Printed, for each round:

* ``bare loop``: one ``requests.Session`` POSTing the same form body in a loop, one request
  at a time: what a plain client gets from this machine and this receiver (the reference),
  the same loop on a bare urllib3 pool, and on our client (``webhooks.client``: h11 parsing
  the answers, the request written in one ``sendall``), which the outbox uses;
* ``durable``: ``WebhookDispatcher.submit()`` N webhooks, each committed to the SQLite outbox
  (group commit, WAL), delivered with its delivery id, and deleted from the outbox; timed from
  the first submit to the last delete committed;
* ``call path``: the p50/p99 time for a greenlet in this process to answer a line sent by a
  peer process (an event in, a command out, as the call path does), with the outbox idle and
  then while it delivers the N webhooks.

``--process`` runs the same with ``webhooks.process: true``: this process only commits to the
outbox, a child ``python -m callflowd.webhooks`` delivers (its CPU is counted in the round's CPU
per delivery). ``--lean-receiver`` swaps the pywsgi receiver for a minimal keep-alive HTTP/1.1
server (request line, headers, a Content-Length body, a fixed 200), so the receiver's own cost is
not what is measured; each round prints the share of a core the receiver used. ``--json`` prints
one JSON line (the rounds only, no call path) for ``python -m tests.benchmarks``.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402

import gevent  # noqa: E402
import gevent.server  # noqa: E402
import requests  # noqa: E402

from callflowd.config.model import WebhookSettings  # noqa: E402
from callflowd.retry import Retry  # noqa: E402
from callflowd.webhooks.dispatcher import WebhookDispatcher  # noqa: E402
from callflowd.webhooks.process import OutboxFeeder  # noqa: E402
from callflowd.webhooks.request import WebhookRequest  # noqa: E402
from callflowd.webhooks.store import FILENAME  # noqa: E402
from tests.benchmarks.procstat import cpu_seconds  # noqa: E402

FIELDS = tuple((name, "value-%d" % n) for n, name in enumerate(
    ("call_id", "caller_id_name", "caller_id_number", "callee_id_number", "call_direction",
     "destination_number", "callflow_id", "previous_action", "previous_outcome", "switch_hostname")))

RECEIVER = """
from gevent import monkey; monkey.patch_all()
import logging, sys, gevent
from callflowd.demo.receiver import WebhookReceiver
class Quiet(WebhookReceiver):
    def _record(self, environ):  # count, don't keep: the benchmark sends many
        environ["wsgi.input"].read()
r = Quiet().start()
print(r.port, flush=True)
gevent.wait()  # serve until the benchmark terminates us
"""

PROBE = """
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
sock = socket.create_connection(("127.0.0.1", port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
reader = sock.makefile("rb")
samples = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.perf_counter()
    sock.sendall(b"event\\n")
    reader.readline()
    samples.append(time.perf_counter() - start)
    time.sleep(0.002)
samples.sort()
print("%.3f %.3f %d" % (samples[len(samples) // 2] * 1e3, samples[int(len(samples) * 0.99)] * 1e3, len(samples)))
"""


LEAN_RECEIVER = """
from gevent import monkey; monkey.patch_all()
import socket, gevent, gevent.server
OK = b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n"
BAD = b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n"
def serve(sock, address):
    # HTTP/1.1, keep-alive: a request line, headers up to the empty line, a Content-Length body.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")
    while True:
        line = reader.readline(65537)
        if not line:
            return
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            sock.sendall(BAD)
            return
        length, close, chunked = 0, parts[2] == b"HTTP/1.0", False
        for _ in range(101):
            header = reader.readline(65537)
            if header in (b"\\r\\n", b"\\n", b""):
                break
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = b"close" in value.lower()
            elif name == b"transfer-encoding":
                chunked = True
        if chunked or header == b"":  # chunked bodies: not sent by callflowd, refused here
            sock.sendall(BAD)
            return
        if length and len(reader.read(length)) != length:
            return
        sock.sendall(OK)
        if close:
            return
server = gevent.server.StreamServer(("127.0.0.1", 0), serve)
server.start()
print(server.server_port, flush=True)
gevent.wait()
"""


def start_receiver(lean=False):
    process = subprocess.Popen([sys.executable, "-c", LEAN_RECEIVER if lean else RECEIVER],
                               stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())
    return process, "http://127.0.0.1:%d/hook" % port


def bare_loop(url, count):
    body = urllib.parse.urlencode(FIELDS)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    with requests.Session() as session:
        session.post(url, data=body, headers=headers).close()  # connect once
        start = time.perf_counter()
        for _ in range(count):
            session.post(url, data=body, headers=headers).close()
        return count / (time.perf_counter() - start)


PROCESS_CONFIG = """
freeswitch: {password: ClueCon}
log_level: warning
state_dir: %(state_dir)s
webhooks: {timeout: 10, outbox: {max: %(max)d, synchronous: %(synchronous)s}, process: true}
callflows:
  - numbers: ["1"]
    flow: {module: webhook, data: {uri: "http://127.0.0.1:9/"}}
"""


def outbox_rows(state_dir):
    import sqlite3

    with sqlite3.connect(os.path.join(state_dir, FILENAME), timeout=10) as db:
        return db.execute("SELECT count(*) FROM outbox").fetchone()[0]


def bare_urllib3_loop(url, count):
    """The same loop on a bare urllib3 pool: the client the outbox uses, without the outbox."""
    import urllib3

    body = urllib.parse.urlencode(FIELDS).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    pool = urllib3.PoolManager(retries=False)
    pool.request("POST", url, body=body, headers=headers)
    start = time.perf_counter()
    for _ in range(count):
        pool.request("POST", url, body=body, headers=headers)
    return count / (time.perf_counter() - start)


def bare_client_loop(url, count):
    """The same loop on our client (h11 parsing, one-sendall writer): what the outbox sends with."""
    from callflowd.webhooks import delivery, wire

    client = delivery.make_client()

    def once():
        answer = client.request(wire.build("POST", url, FIELDS), 10)
        answer.release(answer.read_rest(65536))

    once()
    start = time.perf_counter()
    for _ in range(count):
        once()
    return count / (time.perf_counter() - start)


def durable(url, count, state_dir, synchronous, rate=None, process=False):
    """Deliveries/s for ``count`` webhooks, submitted as fast as possible or at ``rate`` per second."""
    settings = WebhookSettings(timeout=10, synchronous=synchronous, outbox_max=count * 2, process=process)
    if process:
        os.makedirs(state_dir, exist_ok=True)
        config = os.path.join(state_dir, "callflowd.yaml")
        with open(config, "w") as stream:
            stream.write(PROCESS_CONFIG % {"state_dir": state_dir, "synchronous": synchronous, "max": count * 2})
        dispatcher = OutboxFeeder(settings, state_dir, config, log_level="WARNING")
    else:
        dispatcher = WebhookDispatcher(settings, state_dir)
    dispatcher.start()
    retry = Retry(total=2)
    start = time.perf_counter()
    for n in range(count):
        dispatcher.submit(WebhookRequest(call_id="bench-%d" % n, uri=url, method="post",
                                         fields=FIELDS, retry=retry))
        if rate:
            gevent.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))
        elif n % 200 == 199:
            gevent.sleep(0)  # calls arrive over time, not in one tight loop
    if process:
        dispatcher.outbox.flush(30)
        # On a thread: sqlite on this process's hub would block the call-path probe's answers,
        # a cost of the benchmark, not of the daemon.
        while gevent.get_hub().threadpool.apply(outbox_rows, (state_dir,)):
            gevent.sleep(0.01)
    else:
        while dispatcher.stats.delivered + dispatcher.stats.failed < count:
            gevent.sleep(0.01)
        dispatcher.outbox.flush(30)
    elapsed = time.perf_counter() - start
    stats = dispatcher.stats
    batches = dispatcher.outbox.batches
    dispatcher.stop(timeout=5)
    if stats.failed:
        raise SystemExit("%d webhooks failed" % stats.failed)
    return count / elapsed, batches


def call_path_latency(seconds, load=None):
    """p50/p99 ms for this process to answer a peer's line; ``load`` runs meanwhile."""
    def answer(sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        while reader.readline():
            sock.sendall(b"command\n")

    server = gevent.server.StreamServer(("127.0.0.1", 0), answer)
    server.start()
    probe = subprocess.Popen([sys.executable, "-c", PROBE, str(server.server_port), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    worker = gevent.spawn(load) if load else None
    while probe.poll() is None:
        gevent.sleep(0.05)
    p50, p99, samples = probe.stdout.read().split()
    if worker is not None:
        worker.join()
    server.stop()
    return float(p50), float(p99), int(samples)


def json_rounds(args):
    """Each round's three figures, interleaved, CPU per delivery included."""
    receiver, url = start_receiver(args.lean_receiver)
    workdir = tempfile.mkdtemp(prefix="callflowd-bench-outbox-")
    rounds = []
    try:
        for round_number in range(1, args.rounds + 1):
            bare = bare_loop(url, args.webhooks)
            bare3 = bare_urllib3_loop(url, args.webhooks)
            ours = bare_client_loop(url, args.webhooks)
            cpu = os.times()
            rate, batches = durable(url, args.webhooks, os.path.join(workdir, "round-%d" % round_number),
                                    args.synchronous, process=args.process)
            cpu = (os.times().user - cpu.user) + (os.times().system - cpu.system)
            rounds.append({"requests": bare, "urllib3": bare3, "client": ours, "durable": rate,
                           "durable_cpu_ms": cpu / args.webhooks * 1e3, "commits": batches})
    finally:
        receiver.terminate()
        receiver.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"webhooks": args.webhooks, "synchronous": args.synchronous, "rounds": rounds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=5000, help="per durable round (default 5000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", choices=("normal", "full"), default="normal")
    parser.add_argument("--process", action="store_true",
                        help="deliver from a child process (webhooks.process: true)")
    parser.add_argument("--paced-rate", type=int, default=200,
                        help="webhooks/s for the paced call-path measurement (default 200)")
    parser.add_argument("--json", action="store_true", help="one JSON line of the rounds; no call path")
    parser.add_argument("--lean-receiver", action="store_true",
                        help="a minimal keep-alive HTTP/1.1 server (gevent StreamServer) instead of the pywsgi one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.json:
        print(json.dumps(json_rounds(args)))
        return
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print("machine: %d cores (%s), Python %s, requests %s" % (os.cpu_count(), cpu, platform.python_version(),
                                                              requests.__version__))
    print("command: %s" % " ".join([os.path.basename(sys.executable), "-m", "tests.benchmarks.bench_webhook_outbox"]
                                    + sys.argv[1:]))
    print("receiver: %s, in its own process" % ("the lean StreamServer one" if args.lean_receiver
                                                else "callflowd.demo.receiver (gevent pywsgi)"))
    receiver, url = start_receiver(args.lean_receiver)
    workdir = tempfile.mkdtemp(prefix="callflowd-bench-outbox-")
    try:
        for round_number in range(1, args.rounds + 1):
            bare = bare_loop(url, args.webhooks)
            bare3 = bare_urllib3_loop(url, args.webhooks)
            ours = bare_client_loop(url, args.webhooks)
            state_dir = os.path.join(workdir, "round-%d" % round_number)
            children_before = (os.times().children_user, os.times().children_system)
            receiver_cpu = cpu_seconds(receiver.pid)
            cpu = os.times()
            rate, batches = durable(url, args.webhooks, state_dir, args.synchronous, process=args.process)
            cpu = (os.times().user - cpu.user) + (os.times().system - cpu.system)
            if args.process:  # the delivery children, waited for by the feeder's stop()
                cpu += (os.times().children_user + os.times().children_system
                        - children_before[0] - children_before[1])
            receiver_cpu = cpu_seconds(receiver.pid) - receiver_cpu
            print("round %d: bare requests.Session loop %6.0f requests/s | bare urllib3 loop %6.0f requests/s | "
                  "bare loop on our client (h11) %6.0f requests/s | durable outbox (synchronous=%s%s) %6.0f deliveries/s (%.0f%% of the requests loop), "
                  "%.3f ms CPU each, %d commits for %d webhooks; the receiver used %.0f%% of a core"
                  % (round_number, bare, bare3, ours, args.synchronous, ", delivery process" if args.process else "",
                     rate, 100 * rate / bare, cpu / args.webhooks * 1e3, batches, args.webhooks,
                     100 * receiver_cpu * rate / args.webhooks))
        idle = call_path_latency(4)
        paced = call_path_latency(4, load=lambda: durable(
            url, 4 * args.paced_rate, os.path.join(workdir, "paced"), args.synchronous, rate=args.paced_rate,
            process=args.process))
        flood = call_path_latency(4, load=lambda: durable(url, args.webhooks, os.path.join(workdir, "flood"),
                                                          args.synchronous, process=args.process))
        print("call path, line in -> line out (p50 / p99 ms, samples):")
        print("  outbox idle:                        %.2f / %.2f (%d)" % idle)
        print("  outbox delivering %4d webhooks/s:   %.2f / %.2f (%d)" % ((args.paced_rate,) + paced))
        print("  outbox flooded with %d at once:   %.2f / %.2f (%d)" % ((args.webhooks,) + flood))
    finally:
        receiver.terminate()
        receiver.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
