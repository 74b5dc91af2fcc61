"""Peak memory of one hostile answer, in a fresh interpreter (run by a test as a module).

``python -m tests.faults.rss_probe MB`` serves a gzip bomb inflating to MB megabytes of
``data: AAAA…`` (no newline) from a raw server in this process, reads it with
``stream_chat``, and prints one JSON line: the peak RSS growth (VmHWM after, minus VmRSS
before) in MB and the events' types and error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


async def _main(inflated_mb: int) -> dict:
    from chat.upstream import Endpoint, UpstreamError, stream_chat

    from .hostile import gzip_bomb, serve_compressed
    from .rawserver import RawServer

    bomb = gzip_bomb(inflated_mb * 1024 * 1024)
    server = await RawServer(handler=serve_compressed(bomb)).start()
    endpoint = Endpoint(base_url=server.url, first_byte_timeout=600, idle_timeout=600)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    before = _status_kb("VmRSS")
    events = []
    try:
        async with contextlib.aclosing(stream_chat(endpoint, body)) as stream:
            async for event in stream:
                events.append(event)
    finally:
        await server.close()
    grown = (_status_kb("VmHWM") - before) / 1024
    errors = [e.message for e in events if isinstance(e, UpstreamError)]
    return {
        "compressed_kb": len(bomb) // 1024,
        "grown_mb": round(grown, 1),
        "events": [type(e).__name__ for e in events],
        "error": errors[0] if errors else None,
    }


def main() -> None:
    import django

    django.setup()
    print(json.dumps(asyncio.run(_main(int(sys.argv[1])))))


if __name__ == "__main__":
    main()
