"""Real SIP endpoints for the real-switch tests: sipp (Debian ``sip-tester``) processes.

A *phone* registers as a directory user on the ``internal`` profile (5060) and then
answers, rejects or ignores the INVITE the switch sends it; a *caller* calls a parked
test number on the ``external`` profile (5080). The scenarios in ``sipp/`` are copies of
the ones shipped with the test FreeSWITCH (shared/freeswitch/sipp), so a clone without
``shared/`` can run the tier against any switch configured the same way.
"""

import errno
import pathlib
import shutil
import socket
import subprocess
import time

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

    def phone(self, scenario, port=PHONE_PORT):
        """A registered phone's behaviour for the next INVITE (uas_busy.xml, uas_answer.xml...).

        Returns once the phone listens on its port: an INVITE sent before that is refused
        by the kernel, and sofia turns the refusal into a local 503 at once.
        """
        process = self._start("phone", INTERNAL, scenario, port)
        _wait_bound(process, port)
        return process

    def call(self, number, scenario="uac_wait_bye.xml", port=CALLER_PORT):
        """A caller dialling ``number`` on the external profile."""
        return self._start("caller", EXTERNAL, scenario, port, "-s", number)

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

    def _start(self, role, target, scenario, port, *extra):
        log_path = self.workdir / ("sipp-%s-%d.log" % (role, len(self._processes)))
        args = ["sipp", target, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
                "-mp", str(media_port(port)), "-m", "1", "-nostdin", "-timeout", SIPP_TIMEOUT,
                "-timeout_error", *extra]
        with open(log_path, "wb") as out:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       cwd=self.workdir)
        process.log_path = str(log_path)
        self._processes.append(process)
        return process


def media_port(port):
    """sipp's RTP base for a SIP port. sipp binds four ports from it (audio RTP and RTCP, video
    RTP and RTCP), so port + 1000 collided for phones on 5070 and 5072 (6070-6073 vs 6072):
    the second phone could not bind its audio and never answered."""
    return 6000 + (port - 5000) * 4


def _wait_bound(process, port, timeout=5.0):
    """Until something holds UDP 127.0.0.1:``port`` (our bind fails), or the process ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return
            raise
        finally:
            probe.close()
        time.sleep(0.02)  # polling the kernel's table: nothing tells us when sipp has bound
