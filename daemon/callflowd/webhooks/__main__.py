"""``python -m callflowd.webhooks -c CONFIG``: the delivery process (see ``webhooks.process``).

Started by the daemon when ``webhooks.process`` is true, never by hand. It
follows the outbox the daemon commits to: woken by a byte on stdin, and every
``POLL_SECONDS`` in case a wake-up was missed. SIGTERM (the daemon stopping):
it delivers what is due for ``--drain`` seconds, then exits. SIGINT, or the end
of stdin (the daemon is gone: killed, crashed): it exits at once, so a
restarted daemon's new delivery process is the only one sending. Either way
what is not delivered stays in the outbox.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import gevent.fileobject  # noqa: E402
from gevent.event import Event  # noqa: E402

from callflowd import logfmt, logsetup  # noqa: E402
from callflowd.config.loader import load_config  # noqa: E402
from callflowd.errors import ConfigError  # noqa: E402
from callflowd.webhooks.dispatcher import WebhookDispatcher  # noqa: E402
from callflowd.webhooks.store import OutboxError  # noqa: E402

log = logging.getLogger("callflowd.webhooks.process")

POLL_SECONDS = 1.0
DRAIN_SECONDS = 10.0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m callflowd.webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--log-level", default=None)
    parser.add_argument("--drain", type=float, default=DRAIN_SECONDS)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print("callflowd delivery: %s" % exc, file=sys.stderr)
        return 2
    logsetup.configure(args.log_level or config.log_level)
    logfmt.hide(config.freeswitch.password, *config.directory.webhooks.secrets.values())

    dispatcher = WebhookDispatcher(config.directory.webhooks, config.state_dir, shared=True)
    try:
        dispatcher.start()
    except OutboxError as exc:
        log.error("cannot start: %s", exc)
        return 1
    stop = Event()
    wake = Event()
    drain = [args.drain]

    def stop_now():
        drain[0] = 0.0
        stop.set()

    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop_now)

    def read_wakeups():
        stdin = gevent.fileobject.FileObjectPosix(sys.stdin.fileno(), "rb", bufsize=0, close=False)
        while stdin.read(4096):
            wake.set()
        log.warning("the daemon is gone (end of stdin); stopping at once")
        stop_now()

    def follow():
        while True:
            wake.wait(POLL_SECONDS)
            wake.clear()
            dispatcher.follow()

    workers = [gevent.spawn(read_wakeups), gevent.spawn(follow)]
    stop.wait()
    gevent.killall(workers)
    dispatcher.stop(timeout=drain[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
