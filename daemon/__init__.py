"""scanwatch: keeps Harbor registries scanned and tells people what to fix."""

__version__ = "0.1.0"
