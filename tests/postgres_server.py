"""A real PostgreSQL 15 server for tests, started and stopped by the test itself.

initdb in a fresh temporary directory, owned by the ``postgres`` system user when the tests run as root (PostgreSQL
refuses to run as root); the server listens on a unix socket in that directory only (``listen_addresses=''``: no
TCP), with no systemd. Debian's binaries (/usr/lib/postgresql/15/bin, package ``postgresql``, installed by
scripts/bootstrap.sh). The superuser logs in over the socket without a password (``trust``); every other role
needs its password (``scram-sha-256``), so tests exercise a real login and a refused one.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

BIN_GLOB = "/usr/lib/postgresql/*/bin"
PORT = 5432
TEST_PASSWORD = "s3cret-Pa55"  # of the login role tests create (scram-sha-256 over the socket)


def pg_bin():
    dirs = sorted(glob.glob(BIN_GLOB), key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for directory in reversed(dirs):
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return directory
    return None


class PostgresServer:
    """``with PostgresServer() as pg: pg.create_database("x", owner="shadowdesk", password="pw"); pg.url(...)``."""

    def __init__(self):
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found under %s (apt-get install postgresql; "
                               "scripts/bootstrap.sh does it)" % BIN_GLOB)
        self.root = tempfile.mkdtemp(prefix="sd-pg-")
        self.data = os.path.join(self.root, "data")
        self.socket_dir = os.path.join(self.root, "sock")
        self.log = os.path.join(self.root, "server.log")
        self.running = False
        self._as = []
        if os.geteuid() == 0:  # PostgreSQL refuses root: run it as the postgres system user
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o755)

    def _run(self, *cmd, **kwargs):
        return subprocess.run(self._as + list(cmd), check=True, capture_output=True, text=True, **kwargs)

    def start(self):
        self._run("mkdir", "-p", self.socket_dir)
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "--auth-local=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        with open(os.path.join(self.root, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write("local all postgres trust\nlocal all all scram-sha-256\n")
        self._run("cp", os.path.join(self.root, "pg_hba.conf"), os.path.join(self.data, "pg_hba.conf"))
        options = "-c listen_addresses='' -k %s -p %d -c fsync=off -c synchronous_commit=off" % (self.socket_dir, PORT)
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60",
                  "start")
        self.running = True
        return self

    def stop(self):
        if self.running:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")
            self.running = False

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def psql(self, sql, database="postgres"):
        return self._run(os.path.join(self.bin, "psql"), "-h", self.socket_dir, "-p", str(PORT), "-U", "postgres",
                         "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql).stdout

    def create_database(self, name, owner, password):
        """A fresh database owned by a login role with a password (created once)."""
        exists = self.psql("SELECT 1 FROM pg_roles WHERE rolname = '%s'" % owner).strip()
        if not exists:
            self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (owner, password))
        self.psql("CREATE DATABASE %s OWNER %s" % (name, owner))
        return self.url(name, owner, password)

    def url(self, database, user, password=None):
        auth = user if password is None else "%s:%s" % (user, password)
        return "postgresql://%s@/%s?host=%s&port=%d" % (auth, database, self.socket_dir, PORT)
