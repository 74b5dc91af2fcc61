"""The websockets: a conversation's socket (consumers.py) and the sidebar's (sidebar.py),
their URLs (routing.py), who may open one (auth.py, origin.py), what a frame may carry
(incoming.py), what each page shows of the answers streaming (shown.py), and the
embedded channel layer (layer.py)."""
