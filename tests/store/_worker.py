"""Run in separate processes by the concurrency test: issue through one shared PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

from trustbridge.home import EnrolmentProof, Home, ProductionBatch
from trustbridge.pki.keys import load_private_key_pem
from trustbridge.pki.signers import FileSigner


def main(home_path: str, credential_pem: str, prefix: str, count: int) -> None:
    from cryptography import x509

    data = Path(credential_pem).read_bytes()
    signer = FileSigner(load_private_key_pem(data, None, source=credential_pem))
    certificate = x509.load_pem_x509_certificate(data)
    home = Home.open(Path(home_path))
    serials = [f"{prefix}-{i:05d}" for i in range(count)]
    batch = ProductionBatch(
        ca="devices",
        manufacturer="Muster Maschinenbau GmbH",
        model="AM-7",
        country="DE",
        serial_numbers=tuple(serials),
        level="de-basic",
    )
    proof = EnrolmentProof.sign(certificate, signer, home.batch_digest(batch))
    for _certs, _keys in home.issue_machine_batch(batch, enrolment=proof, chunk_size=25):
        pass
    home.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
