"""OPC UA sessions secured by trustbridge identities.

A sensor test station (an asyncua server) and a reader (an asyncua client) authenticate each
other with trustbridge machine and software identities whose RSA certificates are OPC UA
application instance certificates. Each side decides on the other with the trust resolver (the
bridge route or the trust-list route, revocation required) instead of a trust folder, and checks
that the application URI the peer describes itself with is in its certificate. Both security
policies run in SignAndEncrypt mode: ``Basic256Sha256`` and ``Aes256_Sha256_RsaPss``.

- :func:`verify_peer` / :class:`PeerValidator`: the decision on a peer, and its record;
- :class:`ApplicationIdentity`: an application's key and chain (kept in ``HOME/opcua/``);
- :class:`SensorTestResult`: what a station serves;
- ``trustbridge.opcua.station.StationServer`` (the station's server) and
  ``trustbridge.opcua.client.read_test_result`` (the reader) run asyncua; they are not imported
  here, so that this facade stays light.
"""

from trustbridge.opcua.certificates import PeerRefusedError, PeerRole, check_instance_certificate
from trustbridge.opcua.identity import ApplicationIdentity
from trustbridge.opcua.peers import PeerValidator, PeerVerdict, verify_peer
from trustbridge.opcua.policies import SecurityPolicy
from trustbridge.opcua.results import Measurement, SensorTestResult, read_results

__all__ = [
    "ApplicationIdentity",
    "Measurement",
    "PeerRefusedError",
    "PeerRole",
    "PeerValidator",
    "PeerVerdict",
    "SecurityPolicy",
    "SensorTestResult",
    "check_instance_certificate",
    "read_results",
    "verify_peer",
]
