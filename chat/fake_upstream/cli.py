"""``python -m chat.fake_upstream``: the fake on a real port, served by daphne."""

from __future__ import annotations

import argparse
import logging

from .config import FakeConfig
from .server import FakeUpstream


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tps", type=float, default=FakeConfig.tokens_per_second)
    parser.add_argument("--ttft-ms", type=int, default=FakeConfig.ttft_ms)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    # daphne.server installs Twisted's asyncio reactor on import, so import it only here.
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    application = FakeUpstream(FakeConfig(tokens_per_second=args.tps, ttft_ms=args.ttft_ms))
    endpoints = build_endpoint_description_strings(host=args.host, port=args.port)
    Server(application=application, endpoints=endpoints, verbosity=0).run()
