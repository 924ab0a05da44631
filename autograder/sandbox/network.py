"""The only network a sandbox has: loopback ports that forward to the grader's own services.

The grading process starts a ``Forwarder`` (its thread keeps the host's network), then moves
its main thread into a network namespace of its own (``isolate.own_network``) and opens there,
on 127.0.0.1, the same port numbers as the mail sink and the warehouse server have outside.
Sandboxed processes forked from the main thread share that namespace: a DAG that sends mail to
``smtp_default`` reaches the real sink, and nothing else on the machine or beyond answers.
"""

from __future__ import annotations

import asyncio
import socket
import threading

CONNECT_TIMEOUT = 10.0


class Forwarder:
    """An event loop on a thread of its own that copies bytes between two sockets."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="forwarder", daemon=True)
        self._thread.start()

    def listen(self, port: int, target: tuple[str, int]) -> None:
        """Listen on 127.0.0.1:``port`` in the calling thread's network; forward to ``target``
        as reached from the forwarder thread's network."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        sock.setblocking(False)
        future = asyncio.run_coroutine_threadsafe(self._serve(sock, target), self._loop)
        future.result(timeout=CONNECT_TIMEOUT)

    async def _serve(self, sock: socket.socket, target: tuple[str, int]) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(*target), CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        await asyncio.start_server(handle, sock=sock)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass
