"""Pipes and framing between the supervisor and a sandbox.

Learner output (fd 1 and 2) and the harness's messages (a separate pipe) travel apart, so
printing can never pass for a message. The supervisor reads them in chunks, as they come, and
never opens a path the sandbox could write. Set-up talk (the zygote's control socket, each
sandbox's own control socket) goes over SOCK_SEQPACKET sockets: one JSON object a message,
descriptors passed with SCM_RIGHTS, and the sender's host pid read from SCM_CREDENTIALS,
which the kernel fills in and translates across pid namespaces (no sandbox can claim another
process's pid).
"""

from __future__ import annotations

import array
import asyncio
import codecs
import contextlib
import json
import os
import socket
import struct
from typing import Any

from runner.sandbox.run_state import MESSAGE_LIMIT

READ_CHUNK = 64 * 1024
CONTROL_MESSAGE = 64 * 1024  # the largest set-up message either side sends
_UCRED = struct.Struct("iII")  # pid, uid, gid

Queue = asyncio.Queue[tuple[str, Any]]


async def pipe_reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    """An asyncio reader over the read end of a pipe (it takes ownership of `fd`), and its
    transport, to close when the reader is no longer wanted."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MESSAGE_LIMIT)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", buffering=0))
    return reader, transport


async def write_all(fd: int, data: bytes) -> None:
    """Write `data` to a pipe without blocking the loop, then close it (BrokenPipeError when
    the reader is gone)."""
    os.set_blocking(fd, False)
    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await _writable(fd)
    finally:
        os.close(fd)


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await future
    finally:
        loop.remove_writer(fd)


async def pump_output(stream: str, reader: asyncio.StreamReader, queue: Queue) -> None:
    """One ("output", (stream, text, bytes)) per chunk, decoded without splitting a character."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while chunk := await reader.read(READ_CHUNK):
            text = decoder.decode(chunk)
            if text:
                await queue.put(("output", (stream, text, len(chunk))))
        tail = decoder.decode(b"", final=True)
        if tail:
            await queue.put(("output", (stream, tail, 0)))
    finally:
        await queue.put(("eof", stream))


async def pump_messages(reader: asyncio.StreamReader, queue: Queue) -> None:
    """One ("message", line) per line of the pipe. The learner's code shares the harness's
    process and can write here too: a line too long to be a message is skipped (one ("bad",
    why)), and reading goes on, so the harness's own messages still get through."""
    buffer = bytearray()
    skipping = False
    try:
        while chunk := await reader.read(READ_CHUNK):
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                if not skipping:
                    buffer += chunk[start:end]
                    if buffer.strip():
                        await queue.put(("message", bytes(buffer)))
                skipping = False
                buffer.clear()
                start = end + 1
            if not skipping:
                buffer += chunk[start:]
                if len(buffer) > MESSAGE_LIMIT:
                    buffer.clear()
                    skipping = True
                    await queue.put(("bad", "a message longer than the limit"))
    finally:
        await queue.put(("eof", "messages"))


class ControlSocket:
    """An async SOCK_SEQPACKET end: JSON messages, with descriptors out and the peer's pid in."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[ControlSocket, socket.socket]:
        """Our end, and the end to hand to the other side."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(ours), theirs

    async def recv(self) -> tuple[dict[str, Any] | None, int | None]:
        """The next message and its sender's pid (as this process sees it); (None, None) once
        the other side has closed."""
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(
                    CONTROL_MESSAGE, socket.CMSG_SPACE(_UCRED.size)
                )
            except BlockingIOError:
                await self._ready(writing=False)
                continue
            except (ConnectionResetError, OSError) as exc:
                if isinstance(exc, ConnectionResetError) or exc.errno in (9, 104):
                    return None, None
                raise
            if not data:
                return None, None
            pid = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack(value[: _UCRED.size])[0]
            try:
                message = json.loads(data)
            except ValueError:
                message = {"step": "garbled"}
            return (message if isinstance(message, dict) else {"step": "garbled"}), pid

    async def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(message).encode()
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        while True:
            try:
                self.sock.sendmsg([data], ancillary)
                return
            except BlockingIOError:
                await self._ready(writing=True)

    async def _ready(self, *, writing: bool) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        fd = self.sock.fileno()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        (loop.add_writer if writing else loop.add_reader)(fd, wake)
        try:
            await future
        finally:
            (loop.remove_writer if writing else loop.remove_reader)(fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
