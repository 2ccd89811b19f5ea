"""Read-only pages over the history database, served on the daemon's listener (``app.py``)."""
