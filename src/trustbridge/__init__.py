"""trustbridge: trust infrastructure for cross-border industrial supply chains.

The core packages (``pki``, ``trust``, ``ledger``, ``credentials``, ``assessment``,
``provenance``, ``exchange``) compute on objects in memory and take time and I/O as
parameters. The adapters (``store``, ``home``, ``node``, ``cli``, ``demo``) wire them to a
database, files, HTTP and the terminal.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
