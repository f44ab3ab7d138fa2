"""The node's web UI, next to its API on the HTTPS listener: ``https://HOST:PORT/ui/``.

Server-rendered pages (Jinja2, ``node/templates``) with the node's own CSS and script
(``node/static``): identities and requests with the registration officer's signed decision,
CAs with their CRL and OCSP status, trust lists and the LOTL with their status histories,
partners with their assessments, contracts, messages, the transparency log with its
checkpoints, and the provenance of components. People log in with the TLS client certificate
of their person identity (:mod:`trustbridge.node.ui.login`); the roles are the API's.
"""

from trustbridge.node.ui.router import PREFIX, ui_router

__all__ = ["PREFIX", "ui_router"]
