"""`LocalCluster`: a Ray cluster of several nodes on this machine's 127.0.0.1, for tests and `bench ray`.

Each node is a raylet (the head adds the GCS) started by this process with Ray's own test utility
(`ray.cluster_utils.Cluster`); a reaper ends them if this process dies. The cluster uses token
authentication with a token of its own (never `~/.ray/auth_token`) and a temp folder of its own (never
`/tmp/ray`), set in this process's environment while it runs: every process it starts inherits them,
and `env` gives them to a driver started apart. Ray listens on every interface even when told
127.0.0.1; run inside a loopback-only network namespace (`unshare -n`) to keep it on this machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import ray
from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]
from ray.cluster_utils import Cluster

__all__ = ["LocalCluster"]


class LocalCluster:
    """`nodes` nodes of `cpus_per_node` CPUs each on 127.0.0.1; a context manager that stops them all."""

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1) -> None:
        if nodes < 1 or cpus_per_node < 1:
            raise ValueError(f"a local cluster needs at least 1 node of 1 CPU, got {nodes} of {cpus_per_node}")
        self.n_nodes, self.cpus_per_node = nodes, cpus_per_node
        self._cluster: Cluster | None = None
        self._saved: dict[str, str | None] = {}
        self._tmp: Path | None = None

    def __enter__(self) -> LocalCluster:
        self._tmp = Path(tempfile.mkdtemp(prefix="wlray", dir="/tmp"))  # short: Ray's socket paths live here
        token = self._tmp / "auth_token"
        token.write_text(secrets.token_hex(32), encoding="utf-8")
        token.chmod(0o600)
        self.env = {"RAY_TMPDIR": str(self._tmp), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        _reload_auth()
        try:
            args: dict[str, Any] = {"num_cpus": self.cpus_per_node, "node_ip_address": "127.0.0.1"}
            self._cluster = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
            for _ in range(self.n_nodes - 1):
                self.add_node()
            self._cluster.wait_for_nodes()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def address(self) -> str:
        """The head's GCS address (`ray.init(address=...)`, `WETLOOP_LAB_RAY_ADDRESS`)."""
        assert self._cluster is not None, "the cluster is not running"
        return str(self._cluster.address)

    def add_node(self) -> Any:
        """One more node of `cpus_per_node` CPUs; returns Ray's node handle."""
        assert self._cluster is not None, "the cluster is not running"
        return self._cluster.add_node(num_cpus=self.cpus_per_node, node_ip_address="127.0.0.1")

    def nodes(self) -> list[Any]:
        """Ray's handles of the running nodes, the head first."""
        assert self._cluster is not None, "the cluster is not running"
        return self._cluster.list_all_nodes()

    @staticmethod
    def pids(node: Any) -> list[int]:
        """The PIDs of a node's own processes (raylet, and GCS on the head); its workers are the raylet's children."""
        return [info.process.pid for infos in node.all_processes.values() for info in infos]

    def kill_node(self, node: Any, extra_pids: Sequence[int] = ()) -> None:
        """kill -9 a node's processes by PID (and `extra_pids`, e.g. its workers), as a machine failure would."""
        assert self._cluster is not None, "the cluster is not running"
        for pid in [*self.pids(node), *extra_pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._cluster.remove_node(node, allow_graceful=False)

    def wait_for_nodes(self, alive: int, timeout_s: float = 60.0) -> None:
        """Until `alive` nodes are alive in the driver's view (the driver must be connected)."""
        deadline = time.monotonic() + timeout_s
        while sum(1 for n in ray.nodes() if n.get("Alive")) != alive:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray cluster did not reach {alive} alive node(s) in {timeout_s:.0f} s")
            time.sleep(0.2)

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if ray.is_initialized():
            ray.shutdown()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.shutdown()
            self._cluster = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_auth()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _reload_auth() -> None:
    """Ray reads RAY_AUTH_MODE and the token once per process: make it read them again."""
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
