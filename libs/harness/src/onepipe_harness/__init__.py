"""The stack started for real on this machine, for the tests, `just cases` and the benchmarks.

Free ports, a private redis-server, each service as a subprocess (`model_service`, `gateway`,
`worker`), an ASGI app on a thread. A development tool: no service installs it.
"""
