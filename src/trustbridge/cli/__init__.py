"""The ``trustbridge`` command line (typer + rich)."""
