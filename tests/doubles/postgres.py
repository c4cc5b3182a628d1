"""A throwaway PostgreSQL server for the shared-outbox tests: Debian's own binaries, a private socket.

``initdb`` into a fresh folder, ``postgres`` listening on a Unix socket in that
folder only (no TCP port to collide with anything), trust authentication for
the ``postgres`` role. PostgreSQL refuses to run as root, so under root (CI) it
runs as the ``postgres`` user that Debian's package creates. ``stop()`` and
``start()`` keep the data: a test can take the server away and bring it back.

Without the binaries the tests that need it skip, unless
``CALLFLOWD_REAL_POSTGRES=1`` says they must run (``.ci/run`` installs Debian's
``postgresql`` and sets it), and then they fail.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

REQUIRED = os.environ.get("CALLFLOWD_REAL_POSTGRES") == "1"


def _binaries():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


class PostgresServer:
    def __init__(self):
        self.bindir = _binaries()
        if self.bindir is None:
            message = "no PostgreSQL server binaries (apt-get install postgresql)"
            if REQUIRED:
                pytest.fail(message + " and CALLFLOWD_REAL_POSTGRES=1")
            pytest.skip(message)
        self.dir = tempfile.mkdtemp(prefix="callflowd-pg-")
        self.data = os.path.join(self.dir, "data")
        self._as_user = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.dir, 0o755)
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self):
        return "postgresql://postgres@/postgres?host=%s" % self.dir

    def _run(self, tool, *args):
        subprocess.run(self._as_user + [os.path.join(self.bindir, tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"),
                  "-o", "-k %s -c listen_addresses='' -c fsync=off" % self.dir, "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-w", "-m", mode, "stop")

    def crash(self):
        """The server dies as at a power cut of its process: ``immediate`` skips the checkpoint."""
        self.stop("immediate")

    def destroy(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)
