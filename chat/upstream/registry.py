"""The pooled httpx clients, one per event loop (``None``: no loop running).

A module of its own so that both ``pool`` (which fills it) and ``netguard`` (which empties
it when a guard setting changes) can reach it without importing each other.
"""

from __future__ import annotations

import asyncio

import httpx

clients: dict[asyncio.AbstractEventLoop | None, httpx.AsyncClient] = {}


def forget_clients() -> None:
    """Drop every pooled client (not closed: a new one is built on next use)."""
    clients.clear()
