"""The ``callflowd`` command: ``run``, ``check``, ``simulate`` and ``demo``.

gevent's monkey-patching comes first, before anything imports socket or
threading, so requests and the stdlib cooperate with the event loop.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402

from callflowd import __version__, logfmt, logsetup  # noqa: E402
from callflowd.errors import ConfigError  # noqa: E402

DEFAULT_CONFIG = "/etc/callflowd/callflowd.yaml"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_CONFIG = 2


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except ConfigError as exc:
        for problem in getattr(exc, "problems", (exc,)):  # ConfigErrors: every document's problems
            # escaped: a file name may hold a newline
            print("callflowd: %s" % logfmt.escape_line(str(problem)), file=sys.stderr)
        return EXIT_BAD_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _parser():
    parser = argparse.ArgumentParser(prog="callflowd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version="callflowd %s" % __version__)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon in the foreground, logging to stderr")
    run.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML config (default %(default)s)")
    run.add_argument("--log-level", type=str.lower, choices=("debug", "info", "warning", "error"),
                     help="override log_level from the config (a reload keeps it)")
    run.add_argument("--log-format", choices=logsetup.FORMATS, default="text",
                     help="text lines, or one JSON object per line for log shippers (default %(default)s)")
    run.set_defaults(command=_run)

    check = commands.add_parser("check", help="validate the config and callflows; exit 0 or 2")
    check.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML config (default %(default)s)")
    check.set_defaults(command=_check)

    simulate = commands.add_parser(
        "simulate", help="one call through your callflows against the built-in simulator: "
        "the path, FreeSWITCH's commands, the webhooks")
    simulate.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML config (default %(default)s)")
    simulate.add_argument("--number", required=True, help="the dialled number")
    simulate.add_argument("--device", choices=("busy", "no_answer", "answer", "not_registered"),
                          default="answer", help="what every phone the flow rings does (default %(default)s)")
    simulate.add_argument("--caller", default="+15551230000", help="the caller's number (default %(default)s)")
    simulate.add_argument("--digits", action="append", default=[], metavar="KEYS",
                          help="what the caller keys in at a menu prompt, e.g. 1# (give it again for "
                          "the next prompt; none: the caller keys nothing)")
    simulate.add_argument("--at", type=_moment, metavar="'YYYY-MM-DDTHH:MM ZONE'",
                          help="the time the call happens, for temporal routes, e.g. "
                          "'2026-12-24T18:00 Europe/Paris' (no zone: UTC; default: now)")
    simulate.add_argument("--webhook-to", metavar="URL",
                          help="send the webhooks to this server instead of only printing them "
                          "(http://host:port keeps each webhook's path; a URL with a path replaces it)")
    simulate.add_argument("-v", "--verbose", action="store_true", help="show the daemon's log lines")
    simulate.set_defaults(command=_simulate)

    demo = commands.add_parser("demo", help="run the example callflow against the built-in simulator")
    demo.add_argument("--scenario", choices=("busy", "no_answer", "answer"), default="busy",
                      help="what the front-desk phone does (default %(default)s)")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the daemon's log lines")
    demo.set_defaults(command=_demo)
    return parser


def _check(args):
    from callflowd.flow.load import load_config

    config = load_config(args.config)
    numbers = sum(len(flow.numbers) for flow in config.callflows)
    print("config ok: %s: %d callflows, %d numbers, %d devices, %d voicemail boxes" % (
        args.config, len(config.callflows), numbers,
        len(config.directory.devices), len(config.directory.voicemail_boxes)))
    for warning in config.warnings:  # accepted, but not run as Kazoo would
        print("warning: %s" % warning)
    return EXIT_OK


def _run(args):
    from callflowd.flow.load import load_config
    from callflowd.service import Service

    config = load_config(args.config)
    logsetup.configure(args.log_level or config.log_level, log_format=args.log_format)
    return Service(config, pin_log_level=args.log_level is not None).run()


def _simulate(args):
    from callflowd.flow.load import load_config
    from callflowd.demo.simulate import simulate

    config = load_config(args.config)
    logsetup.configure("INFO" if args.verbose else "WARNING")
    return simulate(config, args.number, args.device, webhook_to=args.webhook_to, caller=args.caller,
                    digits=args.digits, at=args.at, out=sys.stdout)


def _moment(text):
    """``2026-12-24T18:00 Europe/Paris`` as an aware datetime; argparse turns a ValueError into exit 2."""
    import datetime
    import zoneinfo

    when, _, zone = text.strip().partition(" ")
    try:
        moment = datetime.datetime.fromisoformat(when)
        tz = zoneinfo.ZoneInfo(zone.strip()) if zone.strip() else datetime.timezone.utc
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        raise argparse.ArgumentTypeError("not a time like '2026-12-24T18:00 Europe/Paris': %s" % exc) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def _demo(args):
    from callflowd.demo.run import run_demo

    logsetup.configure("INFO" if args.verbose else "WARNING")
    return run_demo(args.scenario, out=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
