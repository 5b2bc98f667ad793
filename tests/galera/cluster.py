"""A throwaway MariaDB Galera cluster on this machine, from Debian's packages.

``mariadb-server`` gives ``mariadbd`` and ``mariadb-install-db``; ``galera-4`` gives the
replication provider. Every node gets its own data directory under one temporary
directory, its own ports (picked free: SQL, group communication, incremental and full
state transfer), and ``user=mysql`` when started as root - the rsync state transfer
refuses to run as root. The first node bootstraps the cluster (``--wsrep-new-cluster``),
the others join it by a full state transfer; a node killed with ``kill -9`` and started
again rejoins by an incremental one. Nothing here touches a MariaDB already running on
the machine (port 3306 and its data directory).

Used by the ``galera_cluster`` fixture (``tests/conftest.py``) and by
``benchmarks/galera.py``; ``python tests/galera/cluster.py`` boots one and waits, to try
things by hand.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pymysql

PROVIDER_PATHS = (
    "/usr/lib/galera/libgalera_smm.so",  # Debian, Ubuntu
    "/usr/lib/libgalera_smm.so",
    "/usr/lib64/galera-4/libgalera_smm.so",  # Fedora, RHEL
    "/usr/lib64/galera/libgalera_smm.so",
)
DATABASE = "tokenplans_test"
CLUSTER_NAME = "tokenplans_test"
BOOT_TIMEOUT_S = 180.0
#: The same InnoDB settings for a Galera node and for the single server compared with it:
#: small enough for a laptop, and ``flush_log_at_trx_commit=2`` as Galera's guide
#: advises (the cluster is the durability; a process crash loses nothing either way).
INNODB_SETTINGS = {
    "default_storage_engine": "InnoDB",
    "innodb_buffer_pool_size": "64M",
    "innodb_log_file_size": "48M",
    "innodb_flush_log_at_trx_commit": "2",
    "innodb_autoinc_lock_mode": "2",
    "binlog_format": "ROW",
    "max_connections": "300",
}


class ClusterError(RuntimeError):
    """The cluster (or one node) did not come up; the message holds the node's log."""


def missing_packages() -> str | None:
    """Why a cluster cannot be booted here (a sentence naming what to install), or None."""
    needed = {
        "mariadbd (apt install mariadb-server)": _mariadbd(),
        "mariadb-install-db (apt install mariadb-server)": shutil.which("mariadb-install-db"),
        "the Galera provider libgalera_smm.so (apt install galera-4)": _provider(),
        "rsync, for state transfers (apt install rsync)": shutil.which("rsync"),
    }
    missing = [name for name, found in needed.items() if not found]
    return f"missing {', '.join(missing)}" if missing else None


def _mariadbd() -> str | None:
    found = shutil.which("mariadbd")
    if found:
        return found
    return "/usr/sbin/mariadbd" if os.access("/usr/sbin/mariadbd", os.X_OK) else None


def _provider() -> str | None:
    return next((path for path in PROVIDER_PATHS if os.path.exists(path)), None)


#: The lowest port a node may get; below it are the well-known and registered services'.
LOWEST_PORT = 20000


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks outgoing connections' source ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing is bound to now, below the kernel's range of
    source ports where there is room: a node restarted in a test binds its ports again,
    and a port in that range may meanwhile be any outgoing connection's source port
    (the restart then fails with "Address already in use")."""
    low, _ = _ephemeral_ports()
    if low - LOWEST_PORT < 1000:  # no room below it: let the kernel pick, as before
        with ExitStack() as stack:
            probes = [stack.enter_context(socket.socket()) for _ in range(count)]
            for probe in probes:
                probe.bind(("127.0.0.1", 0))
            return [probe.getsockname()[1] for probe in probes]
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(LOWEST_PORT, low)  # noqa: S311 - not crypto
        if port in ports or port in _HANDED_OUT:  # another node's, not started yet
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    _HANDED_OUT.update(ports)
    return ports


#: The ports this process gave its nodes: never given twice.
_HANDED_OUT: set[int] = set()


class Node:
    """One ``mariadbd``: its files under ``home`` and its four ports."""

    def __init__(self, name: str, home: Path, *, galera: bool = True) -> None:
        self.name = name
        self.home = home
        self.galera = galera
        self.port, self.gcomm_port, self.ist_port, self.sst_port = _free_ports(4)
        self.process: subprocess.Popen[bytes] | None = None
        self.datadir = home / "data"
        self.socket_path = home / "mariadbd.sock"
        self.config = home / "my.cnf"
        self.log = home / "error.log"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the test database on this node, over TCP."""
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{DATABASE}?charset=utf8mb4"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_config(self, cluster_address: str) -> None:
        settings = {
            "datadir": str(self.datadir),
            "socket": str(self.socket_path),
            "port": str(self.port),
            "bind-address": "127.0.0.1",
            "pid-file": str(self.home / "mariadbd.pid"),
            "log-error": str(self.log),
            "skip-name-resolve": "ON",
            **INNODB_SETTINGS,
        }
        if os.geteuid() == 0:
            settings["user"] = "mysql"
        if self.galera:
            settings.update(
                {
                    "wsrep_on": "ON",
                    "wsrep_provider": str(_provider()),
                    "wsrep_cluster_name": CLUSTER_NAME,
                    "wsrep_cluster_address": cluster_address,
                    "wsrep_node_name": self.name,
                    "wsrep_node_address": f"127.0.0.1:{self.gcomm_port}",
                    "wsrep_sst_method": "rsync",
                    "wsrep_sst_receive_address": f"127.0.0.1:{self.sst_port}",
                    "wsrep_provider_options": (
                        f'"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port};'
                        f" ist.recv_addr=127.0.0.1:{self.ist_port};"
                        ' gcache.size=128M"'
                    ),
                }
            )
        lines = ["[mariadbd]", *(f"{key}={value}" for key, value in settings.items())]
        self.config.write_text("\n".join(lines) + "\n")

    def install(self, mysql_user: bool) -> None:
        """An empty data directory with the system tables (root without a password)."""
        self.datadir.mkdir(parents=True)
        command = [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        if mysql_user:
            shutil.chown(self.datadir, "mysql", "mysql")
            command.append("--user=mysql")
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise ClusterError(f"mariadb-install-db failed for {self.name}:\n{done.stderr}")

    def start(self, *extra: str) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the packaged server
                [str(_mariadbd()), f"--defaults-file={self.config}", *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the SST helpers die with it
            )

    def kill(self) -> None:
        """``kill -9`` the node and whatever it started (a state transfer's rsync)."""
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def recovered_position(self) -> str | None:
        """After a crash: the last committed position InnoDB holds (``mariadbd
        --wsrep-recover``, as Debian's ``galera_recovery`` does), so that a restart asks
        for an incremental state transfer instead of a full one."""
        marker = self.log.stat().st_size if self.log.exists() else 0
        self.start("--wsrep-recover")
        assert self.process is not None
        self.process.wait(timeout=BOOT_TIMEOUT_S)
        with self.log.open("rb") as log:
            log.seek(marker)
            found = re.findall(rb"Recovered position: (\S+:-?\d+)", log.read())
        return found[-1].decode() if found else None

    def connect(self, timeout: float = 5) -> pymysql.connections.Connection:
        """An admin connection over the node's Unix socket (root, no password)."""
        # Our own socket: PyMySQL leaks its Unix socket when the connect itself fails.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
        except OSError:
            sock.close()
            raise
        conn = pymysql.connect(
            unix_socket=str(self.socket_path),
            user="root",
            read_timeout=30,
            autocommit=True,
            defer_connect=True,
        )
        conn.connect(sock)
        return conn

    def status(self, *names: str) -> dict[str, str]:
        with self.connect() as conn, conn.cursor() as cursor:
            quoted = ", ".join(f"'{name}'" for name in names)
            cursor.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({quoted})")
            return dict(cursor.fetchall())

    def wait_until_ready(
        self, *, cluster_size: int | None, timeout: float = BOOT_TIMEOUT_S
    ) -> None:
        """Until the node answers SQL, is Synced with the cluster and (if given) sees
        ``cluster_size`` members; ClusterError with its log if it dies or takes too long."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not self.running:
                raise ClusterError(f"{self.name} exited:\n{self.tail()}")
            try:
                if not self.galera:
                    self.connect().close()
                    return
                status = self.status(
                    "wsrep_ready", "wsrep_local_state_comment", "wsrep_cluster_size"
                )
                last = str(status)
                if (
                    status.get("wsrep_ready") == "ON"
                    and status.get("wsrep_local_state_comment") == "Synced"
                    and (
                        cluster_size is None
                        or status.get("wsrep_cluster_size") == str(cluster_size)
                    )
                ):
                    return
            except (OSError, pymysql.MySQLError) as error:
                last = str(error)
            time.sleep(0.25)
        raise ClusterError(f"{self.name} not ready within {timeout:.0f} s ({last}):\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class GaleraCluster:
    """``size`` Galera nodes (or, with ``galera=False``, one plain server configured
    alike, for comparisons) under ``home``."""

    def __init__(self, home: Path, size: int = 3, *, galera: bool = True) -> None:
        self.home = home
        self.nodes = [
            Node(f"node{i + 1}", home / f"node{i + 1}", galera=galera) for i in range(size)
        ]
        address = ",".join(f"127.0.0.1:{node.gcomm_port}" for node in self.nodes)
        for node in self.nodes:
            node.home.mkdir(parents=True)
            node.write_config(f"gcomm://{address}")

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        mysql_user = os.geteuid() == 0
        if mysql_user:
            # The nodes run as mysql and must reach their files under our directory.
            self.home.chmod(0o755)
            for node in self.nodes:
                node.home.chmod(0o755)
                shutil.chown(node.home, "mysql", "mysql")
        for node in self.nodes:
            node.install(mysql_user)
        first, *others = self.nodes
        first.start(*(["--wsrep-new-cluster"] if first.galera else []))
        first.wait_until_ready(cluster_size=1 if first.galera else None)
        with first.connect() as conn, conn.cursor() as cursor:
            # Tests and the server connect over TCP, as root from 127.0.0.1.
            cursor.execute(
                f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cursor.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            cursor.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        for node in others:  # one at a time: each joins by a full state transfer
            node.start()
            node.wait_until_ready(cluster_size=None)
        self.wait_until_synced()

    def wait_until_synced(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        """Until every node is up, Synced, and sees all of them."""
        for node in self.nodes:
            node.wait_until_ready(cluster_size=len(self.nodes), timeout=timeout)

    def restart(self, node: Node) -> None:
        """Start a node that was killed; it rejoins from its recovered position (IST)."""
        position = node.recovered_position()
        node.start(*([f"--wsrep-start-position={position}"] if position else []))
        node.wait_until_ready(cluster_size=len(self.nodes))

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@contextmanager
def running_cluster(size: int = 3, *, galera: bool = True) -> Iterator[GaleraCluster]:
    """A booted cluster in a fresh temporary directory; killed and removed on exit, even
    when it failed to boot. (Not under pytest's temporary directory: that one is private
    to its owner, and the nodes run as ``mysql``.)"""
    home = Path(tempfile.mkdtemp(prefix="tokenplans-galera-"))
    cluster = None
    try:
        cluster = GaleraCluster(home, size, galera=galera)
        cluster.start()
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    """Boot a cluster, print its URLs, and wait for Ctrl-C (or SIGTERM) to remove it."""
    reason = missing_packages()
    if reason:
        raise SystemExit(f"cannot boot a Galera cluster here: {reason}")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with running_cluster() as cluster:
        for url in cluster.urls:
            print(url, flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
