"""Tools to measure the relay: ``manage.py relaybench`` and the scale-out tests.

``wire`` speaks the page's side of the websocket (auth cookie, frames), ``procstat``
reads a process's CPU and memory from /proc, ``harness`` starts the fake endpoint and
the app as real processes on a throwaway database, ``streams`` reads one answer (over the
socket or straight from the endpoint), ``relay`` runs the measurements and ``report``
holds the results, the targets and the table.
"""
