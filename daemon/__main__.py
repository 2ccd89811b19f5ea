"""`python -m daemon` is `scanwatch`."""

from daemon.cli import main

raise SystemExit(main())
