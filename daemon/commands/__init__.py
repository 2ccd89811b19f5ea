"""One module per `scanwatch` command; see ``daemon/cli.py`` for the contract."""
