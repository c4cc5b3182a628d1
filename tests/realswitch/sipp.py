"""Real SIP endpoints for the real-switch tests: sipp (Debian ``sip-tester``) processes.

A *phone* registers as a directory user on the ``internal`` profile (5060) and then
answers, rejects or ignores the INVITE the switch sends it; a *caller* calls a parked
test number on the ``external`` profile (5080). The scenarios in ``sipp/`` are copies of
the ones shipped with the test FreeSWITCH (shared/freeswitch/sipp), so a clone without
``shared/`` can run the tier against any switch configured the same way.
"""

import collections
import pathlib
import re
import shutil
import subprocess
import time

from tests.realswitch.daemon import die_with_parent

SCENARIOS = pathlib.Path(__file__).parent / "sipp"
INTERNAL = "127.0.0.1:5060"
EXTERNAL = "127.0.0.1:5080"
PHONE_PORT = 5070
CALLER_PORT = 5090
SIPP_TIMEOUT = "90s"  # a sipp that hears nothing gives up by itself


class Sipp:
    """Starts sipp processes for one test and makes sure none outlives it."""

    def __init__(self, workdir):
        if shutil.which("sipp") is None:
            raise RuntimeError("sipp is not installed (Debian package sip-tester)")
        self.workdir = pathlib.Path(workdir)
        self._processes = []

    def register(self, user="1000", port=PHONE_PORT):
        """REGISTER ``user`` with its contact on ``port``; waits for the 200."""
        process = self._start("register-%s" % user, INTERNAL, "reg_%s.xml" % user, port,
                              "-oocsf", str(SCENARIOS / "ooc_200.xml"))
        status = process.wait(timeout=30)
        assert status == 0, "registering %s failed (sipp exit %s): %s" % (user, status, self.output(process))

    def phone(self, scenario, port=PHONE_PORT, calls=1, timeout=SIPP_TIMEOUT):
        """A registered phone's behaviour for the next ``calls`` INVITEs (uas_busy.xml, uas_answer.xml...).

        Returns once the phone listens on its port: an INVITE sent before that is refused
        by the kernel, and sofia turns the refusal into a local 503 at once.
        """
        process = self._start("phone", INTERNAL, scenario, port, calls=calls, timeout=timeout,
                              stats=calls > 1)
        _wait_bound(process, port)
        return process

    def call(self, number, scenario="uac_wait_bye.xml", port=CALLER_PORT):
        """A caller dialling ``number`` on the external profile."""
        return self._start("caller", EXTERNAL, scenario, port, "-s", number)

    def call_internal(self, number, scenario, port=CALLER_PORT):
        """A caller dialling ``number`` on the internal profile (the scenario answers its challenge)."""
        return self._start("caller", INTERNAL, scenario, port, "-s", number)

    def callers(self, number, scenario, calls, rate, limit, port=CALLER_PORT, timeout=SIPP_TIMEOUT):
        """``calls`` callers dialling ``number``, ``rate`` new ones a second, at most ``limit`` at once
        (sipp's own pacing, ``-r``/``-l``); their totals are in ``stats(process)`` once it ended."""
        return self._start("callers", EXTERNAL, scenario, port, "-s", number, "-r", str(rate), "-rp", "1000",
                           "-l", str(limit), calls=calls, timeout=timeout, stats=True)

    def unexpected(self, process):
        """What the calls sipp aborted got instead of what the scenario expected, counted:
        ``{"503 Service Unavailable": 12, ...}`` (from its ``-trace_err`` file)."""
        path = pathlib.Path(process.errors_path)
        text = path.read_text(errors="replace") if path.exists() else ""
        # Only aborted calls: "Dead call ... received '200 OK'" is a late retransmission, harmless.
        return collections.Counter(re.findall(r"Aborting call on unexpected message.*?"
                                              r"received 'SIP/2\.0 (\d{3}[^\r\n']*)", text))

    def stats(self, process):
        """sipp's cumulative counters (``-trace_stat``'s last row): name -> text, e.g.
        ``TotalCallCreated``, ``SuccessfulCall(C)``, ``FailedCall(C)``, ``FailedCallTimeout(C)``."""
        rows = pathlib.Path(process.stats_path).read_text(errors="replace").splitlines()
        if len(rows) < 2:
            return {}
        return dict(zip(rows[0].rstrip(";").split(";"), rows[-1].rstrip(";").split(";")))

    def output(self, process):
        return pathlib.Path(process.log_path).read_text(errors="replace")[-2000:]

    def finish(self, process, timeout=30):
        """Wait for a sipp to end; its exit status (0: the scenario completed)."""
        return process.wait(timeout=timeout)

    def stop_all(self):
        for process in self._processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)

    def _start(self, role, target, scenario, port, *extra, calls=1, timeout=SIPP_TIMEOUT, stats=False):
        log_path = self.workdir / ("sipp-%s-%d.log" % (role, len(self._processes)))
        stats_path = self.workdir / ("sipp-%s-%d.csv" % (role, len(self._processes)))
        errors_path = self.workdir / ("sipp-%s-%d-errors.log" % (role, len(self._processes)))
        if stats:  # the counters, written every minute and once more at the end; why calls failed
            extra += ("-trace_stat", "-stf", str(stats_path), "-fd", "60", "-trace_err", "-error_file",
                      str(errors_path))
        args = ["sipp", target, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
                "-mp", str(media_port(port)), "-m", str(calls), "-nostdin", "-timeout", timeout,
                "-timeout_error", *extra]
        with open(log_path, "wb") as out:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       cwd=self.workdir, preexec_fn=die_with_parent)
        process.log_path = str(log_path)
        process.stats_path = str(stats_path)
        process.errors_path = str(errors_path)
        self._processes.append(process)
        return process


def media_port(port):
    """sipp's RTP base for a SIP port. sipp binds four ports from it (audio RTP and RTCP, video
    RTP and RTCP), so port + 1000 collided for phones on 5070 and 5072 (6070-6073 vs 6072):
    the second phone could not bind its audio and never answered."""
    return 6000 + (port - 5000) * 4


def _wait_bound(process, port, timeout=10.0):
    """Until a socket is bound to UDP ``port`` on 127.0.0.1 (or any address); raises if the
    process ended or the time ran out first.

    Read from the kernel's table (/proc/net/udp), never probed by binding the port ourselves:
    a probe that holds the port for an instant can be the reason sipp's own bind fails, and
    the phone then is not there when the switch sends its INVITE (a local 503 at once)."""
    wanted = {"0100007F:%04X" % port, "00000000:%04X" % port}
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/net/udp") as table:
            if any(row.split()[1] in wanted for row in table.readlines()[1:]):
                return
        if process.poll() is not None:
            raise AssertionError("sipp exited (%s) before listening on UDP %d: %s"
                                 % (process.returncode, port, pathlib.Path(process.log_path).read_text(
                                     errors="replace")[-2000:]))
        if time.monotonic() > deadline:
            raise AssertionError("sipp did not listen on UDP %d within %ss" % (port, timeout))
        time.sleep(0.02)  # polling the kernel's table: nothing tells us when sipp has bound
