"""A Harbor v2.0 API simulator: the ground truth for the client, the scan queue, the benchmarks
and ``scanwatch demo``.

::

    with start_simulator(SimOptions(seed=1, projects=3)) as sim:
        sim.url, sim.admin, sim.robots          # where and who
        sim.control.push(); sim.control.db_update(); sim.control.stats()

It imports nothing from ``daemon.harbor``, ``daemon.scan`` or ``daemon.store``: it is written
from Harbor's behaviour (``../shared/harbor/API-NOTES.md``), not from the client's idea of it.
"""

from __future__ import annotations

import threading
from types import TracebackType

from daemon.sim.auth import robot_name
from daemon.sim.options import FAULT_KINDS, FaultRule, SimOptions
from daemon.sim.server import SimHTTPServer
from daemon.sim.state import Control, SimState

__all__ = ["FAULT_KINDS", "Control", "FaultRule", "SimOptions", "Simulator", "start_simulator"]


class Simulator:
    """A running simulator on 127.0.0.1 (started by :func:`start_simulator`)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.state = SimState(options)
        self.control = Control(self.state)
        self._server = SimHTTPServer((options.host, options.port), self.state)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.state.registry_host = f"{host!s}:{port}"
        self.admin = ("admin", options.admin_password)
        self.robots = {p.name: (robot_name(p), p.robot_secret)
                       for p in self.state.inventory.projects}
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="sim-http",
                                        daemon=True)
        self._stopped = False

    def start(self) -> Simulator:
        self.state.engine.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.state.engine.stop()
        self.state.webhooks.stop()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_simulator(options: SimOptions | None = None) -> Simulator:
    """Build the inventory, bind the port and serve; ``/api/v2.0/ping`` answers on return."""
    return Simulator(options or SimOptions()).start()
