"""The scoring server's ASGI app, with a clean goodbye for keep-alive clients.

Told to stop (SIGTERM), uvicorn closes every idle keep-alive connection at once. A client
whose next request is already on its way gets no answer at all, and a client that never
resends a POST (http.client; urllib3 by default) counts a failed request: once per in-place
update, once per challenger added (the scoring server on the public socket retires then).

Here a retiring scoring server instead stops accepting and lets each connection end the
way the router's drain does: the next request on it is answered with `Connection: close`;
a connection still silent after `DRAIN_IDLE_SECONDS` is closed then. uvicorn has no option
for it, so importing this module (the launch's app string points here, so every worker
imports it) adjusts uvicorn's HTTP protocols before the model loads.

The listening socket is shared (with the router, or the next scoring server), so a
connection may have just been accepted when the stop comes: asyncio registers it one or
two loop iterations later, after uvicorn told every connection it knew to leave (it would
be served as keep-alive until the supervisor kills the server under it), or, if the
listener closed first, drops it unanswered. So the server stops accepting first, lets
those connections arrive, and tells every connection made from then on to leave too. An
answer whose head was already sent (without `Connection: close`) when the stop came keeps
its connection: the client's next request on it gets the goodbye instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from modeldeploy.flavors.mlflow.router import ACCEPT_ITERATIONS, DRAIN_IDLE_SECONDS

_CLOSE = (b"connection", b"close")
#: uvicorn servers (their shared state) that began leaving
_LEAVING: weakref.WeakSet[Any] = weakref.WeakSet()


def _graceful(protocol: type[Any], starts_request: str) -> None:
    """Give `protocol` a graceful `shutdown`; `starts_request` is the method after which a
    new request's cycle exists (its answer then says `Connection: close`)."""
    if getattr(protocol, "_modeldeploy_graceful", False):
        return
    begin = getattr(protocol, starts_request)
    made = protocol.connection_made

    def connection_made(self: Any, transport: Any) -> None:
        made(self, transport)
        if self.server_state in _LEAVING:  # accepted as the server began to leave
            self.shutdown()

    complete = protocol.on_response_complete

    def await_next(self: Any) -> None:
        """Idle: a request may be on its way; close only after a silence."""
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            DRAIN_IDLE_SECONDS, self.timeout_keep_alive_handler
        )

    def shutdown(self: Any) -> None:
        self._modeldeploy_leaving = True
        if self.cycle is None or self.cycle.response_complete:
            await_next(self)
        elif not self.cycle.response_started:
            _last(self.cycle)
        # else its head went out without `Connection: close`, so the client will send again
        # on this connection: that next request is answered, told to close (`started`)

    def on_response_complete(self: Any) -> None:
        complete(self)
        leaving = getattr(self, "_modeldeploy_leaving", False)
        idle = self.cycle is None or self.cycle.response_complete
        if leaving and idle and not self.transport.is_closing():
            await_next(self)

    def started(self: Any, *args: Any) -> Any:
        result = begin(self, *args)
        if getattr(self, "_modeldeploy_leaving", False) and self.cycle is not None:
            _last(self.cycle)
        return result

    protocol.connection_made = connection_made
    protocol.on_response_complete = on_response_complete
    protocol.shutdown = shutdown
    setattr(protocol, starts_request, started)
    protocol._modeldeploy_graceful = True


def _stop_accepting_first(server_class: type[Any]) -> None:
    """Give uvicorn's `Server.shutdown` the order described above."""
    if getattr(server_class, "_modeldeploy_graceful", False):
        return
    original = server_class.shutdown

    async def shutdown(self: Any, sockets: Any = None) -> None:
        _LEAVING.add(self.server_state)
        loop = asyncio.get_running_loop()
        # The standard loop accepts through a reader callback; uvloop (no such callback, so
        # this does nothing there) sets an accepted connection up at once and calls
        # `connection_made` a step later, which the leaving mark covers.
        for server in self.servers:
            for listener in server.sockets:
                loop.remove_reader(listener.fileno())
        for _ in range(ACCEPT_ITERATIONS):
            await asyncio.sleep(0)  # connections already accepted reach `connection_made`
        await original(self, sockets)

    server_class.shutdown = shutdown
    server_class._modeldeploy_graceful = True


def _last(cycle: Any) -> None:
    """This answer is the connection's last, and says so (uvicorn's h11 side writes the
    header only when the request asked for it)."""
    cycle.keep_alive = False
    if not cycle.response_started and _CLOSE not in cycle.scope["headers"]:
        cycle.scope["headers"].append(_CLOSE)


def install() -> None:
    from uvicorn.server import Server

    _stop_accepting_first(Server)
    with contextlib.suppress(ImportError):
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        _graceful(HttpToolsProtocol, "on_headers_complete")
    from uvicorn.protocols.http.h11_impl import H11Protocol

    _graceful(H11Protocol, "handle_events")


def __getattr__(name: str) -> Any:
    """`app`: MLflow's scoring app (loading the model), served with the graceful goodbye."""
    if name != "app":
        raise AttributeError(name)
    install()
    from mlflow.pyfunc.scoring_server.app import app

    return app
