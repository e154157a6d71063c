"""The token keep-alive (task queue `connections`): refreshes OAuth connections nothing
refreshed within their idle threshold, so providers that expire idle refresh tokens do
not drop them.

workflows.py holds the TokenKeepAlive workflow (walks the connections in batches; the
workflow sandbox re-imports it on every run, so it imports only generated messages and
temporalio); activities.py holds keep_alive_batch (PostgreSQL and the token-manager),
called by name. The schedule that starts it is services/temporal/worker.py's.

Nothing is imported here: the sandbox imports this package before workflows.py.
"""
