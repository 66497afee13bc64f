"""Throwaway PostgreSQL servers for tests.

Usage::

    url = pg_url_from_env()            # OTKLIK_TEST_PG_URL, if someone provides a server
    if url is None:
        with start_postgres(tmp_path) as pg:
            db_url = pg.create_database("t_ingest")
            ...

The server uses the Debian ``postgresql`` package's binaries (newest
``/usr/lib/postgresql/*/bin``); install them with ``scripts/setup.sh``.
PostgreSQL refuses to run as root, so when the tests run as root the cluster
is owned by, and the server runs as, the ``postgres`` system user (via
``runuser``, or ``su`` where that is missing).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

ENV_URL = "OTKLIK_TEST_PG_URL"
USER = "otklik"
RUN_AS = "postgres"  # system user created by the Debian package
START_TIMEOUT = 30.0
# sockaddr_un.sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN" and the NUL.
_MAX_SOCKET_DIR_LEN = 107 - len("/.s.PGSQL.65535") - 1
_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def pg_url_from_env() -> str | None:
    """The externally provided server URL (``OTKLIK_TEST_PG_URL``), or None."""
    url = os.environ.get(ENV_URL, "").strip()
    return url or None


def find_pg_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` that has initdb and pg_ctl."""

    def version_key(path: str) -> tuple[int, ...]:
        ver = Path(path).parent.name
        return tuple(int(p) for p in re.findall(r"\d+", ver)) or (0,)

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key)
    for cand in reversed(candidates):
        bindir = Path(cand)
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise RuntimeError(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; "
        "run `bash scripts/setup.sh` (installs the Debian 'postgresql' package)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_pg_user(cmd: list[str]) -> list[str]:
    """Wrap ``cmd`` so that it runs as the ``postgres`` user when we are root."""
    if not _is_root():
        return cmd
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.path.exists(p)), None
    )
    if runuser:
        return [runuser, "-u", RUN_AS, "--", *cmd]
    return ["su", RUN_AS, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _run(cmd: list[str], cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    for var in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"):
        env.pop(var, None)
    return subprocess.run(
        _as_pg_user(cmd),
        cwd=cwd,  # the postgres user may not be able to enter our cwd (e.g. /root)
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _pg_user_can_use(directory: Path) -> bool:
    """Whether the postgres user can create files in ``directory``."""
    if not _is_root():
        return True
    res = _run(["test", "-w", str(directory), "-a", "-x", str(directory)], cwd=Path("/"))
    return res.returncode == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


class PgServer:
    """A running throwaway PostgreSQL server (trust auth, user ``otklik``, 127.0.0.1 only)."""

    def __init__(
        self,
        *,
        bindir: Path,
        root: Path,
        data_dir: Path,
        port: int,
        extra_dirs: list[Path],
    ) -> None:
        self.bindir = bindir
        self.root = root
        self.data_dir = data_dir
        self.port = port
        self.host = "127.0.0.1"
        self.user = USER
        self.log_file = root / "server.log"
        self._extra_dirs = extra_dirs
        self._stopped = False
        atexit.register(self.stop)

    # --- URLs -----------------------------------------------------------------
    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for database ``dbname`` on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string for psycopg.connect()."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    # --- databases --------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` (UTF8, template0); returns its SQLAlchemy URL."""
        _check_db_name(name)
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(name)
                )
            )
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ``name`` (terminating open connections)."""
        _check_db_name(name)
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # --- lifecycle ----------------------------------------------------------------
    def stop(self) -> None:
        """Stop the server at once (pg_ctl stop -m immediate) and delete its files."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        with contextlib.suppress(Exception):
            _run(
                [
                    str(self.bindir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                ],
                cwd=self.root,
            )
        for d in [*self._extra_dirs, self.root]:
            shutil.rmtree(d, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<PgServer {self.host}:{self.port} {self.data_dir} {state}>"


def _check_db_name(name: str) -> None:
    if not _DB_NAME_RE.match(name):
        raise ValueError(f"invalid database name for tests: {name!r}")


def start_postgres(
    base_dir: Path, *, durable: bool = False, config: dict[str, str] | None = None
) -> PgServer:
    """Create and start a fresh PostgreSQL cluster under ``base_dir``; returns when it is ready.

    Tests want speed, not crash safety: the cluster skips fsync and full-page writes unless
    ``durable`` (benchmarks), which keeps the server's own defaults for both. ``config`` adds
    postgresql.conf settings (values as they are written there).

    The cluster lives in a fresh ``pg-*`` directory inside ``base_dir``; when running as
    root and the ``postgres`` user cannot write into ``base_dir`` (e.g. pytest's 0700
    ``tmp_path``), in a fresh ``otklik-pg-*`` directory under the system temp dir instead.
    ``stop()`` deletes it either way.
    """
    bindir = find_pg_bindir()
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)

    if _is_root():
        try:
            pw = pwd.getpwnam(RUN_AS)
        except KeyError:
            raise RuntimeError(
                f"running as root but there is no {RUN_AS!r} system user to run PostgreSQL as; "
                "run `bash scripts/setup.sh` (the Debian 'postgresql' package creates it)"
            ) from None
        if _pg_user_can_use(base_dir):
            root = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))
        else:
            root = Path(tempfile.mkdtemp(prefix="otklik-pg-"))
        os.chmod(root, 0o777)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    else:
        root = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))

    data_dir = root / "data"
    extra_dirs: list[Path] = []
    sock_dir = data_dir
    if len(str(sock_dir)) > _MAX_SOCKET_DIR_LEN:
        # Unix socket paths are limited to ~107 bytes; use a short dir instead.
        sock_dir = Path(tempfile.mkdtemp(prefix="otklik-pgs-"))
        os.chmod(sock_dir, 0o777)
        extra_dirs.append(sock_dir)

    try:
        res = _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data_dir),
                "-A",
                "trust",
                "-U",
                USER,
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=root,
            timeout=120,
        )
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")

        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{sock_dir}'",
            "max_connections": "200",
            "logging_collector": "off",
            "timezone": "'UTC'",
        }
        if not durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        settings.update(config or {})
        conf = data_dir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:  # keeps the file's owner (postgres)
            f.write("\n# otklik test settings\n")
            for key, value in settings.items():
                f.write(f"{key} = {value}\n")

        last_error = ""
        for _attempt in range(3):  # the free port may be taken before the server binds it
            port = _free_port()
            res = _run(
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-D",
                    str(data_dir),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    f"-p {port}",
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT)),
                ],
                cwd=root,
                timeout=START_TIMEOUT + 15,
            )
            if res.returncode == 0:
                server = PgServer(
                    bindir=bindir,
                    root=root,
                    data_dir=data_dir,
                    port=port,
                    extra_dirs=extra_dirs,
                )
                try:
                    _wait_ready(server)
                except BaseException:
                    server.stop()
                    raise
                return server
            last_error = (
                f"pg_ctl start failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n"
                f"--- server.log ---\n{_tail(root / 'server.log')}"
            )
            # make sure nothing is left half-running before retrying on another port
            _run([str(bindir / "pg_ctl"), "stop", "-D", str(data_dir), "-m", "immediate"], cwd=root)
        raise RuntimeError(last_error)
    except BaseException:
        for d in [*extra_dirs, root]:
            shutil.rmtree(d, ignore_errors=True)
        raise


def _wait_ready(server: PgServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(server.conninfo(), connect_timeout=2) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL on port {server.port} not ready after {START_TIMEOUT:.0f}s: "
                    f"{exc}\n--- server.log ---\n{_tail(server.log_file)}"
                ) from exc
            time.sleep(0.1)
