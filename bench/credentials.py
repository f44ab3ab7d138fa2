"""Verifying a trustworthiness credential from a foreign issuer, warm, beside raw JWS verification.

The German customer (Muster) verifies a ``vc+jwt`` that the Japanese conformity assessment body
(Fuji) issued: the signature by the ``x5c`` leaf, ``typ`` and ``@context``, the times, the
issuer's identity through the bridge (at issuance and now), its accreditation for IEC 61508 on
the Japanese trust list, and both status lists. Warm: the issuer's chain resolution and the
status lists are cached, as a verifier that sees many credentials of few issuers has them; the
signature, the document and every check are done on every call.

Baseline (same run, same token, same key): joserfc's ``jws.deserialize_compact`` with the leaf's
P-256 key, a plain ES256 JWS verification. Goal (issue 5): at least 70% of its rate. The SD-JWT
presentation (disclosures and a key-binding JWT) is measured beside it without a goal.

``python -m bench.credentials [--seconds S] [--profile]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.jwk import ECKey
from tests.credentials.world import build_world, sensor_safety
from tests.homes import NOW

from bench._common import (
    Paired,
    Record,
    machine_summary,
    print_table,
    profile,
    rate_record,
    write_results,
)
from trustbridge.credentials.formats import Format, present

GOAL = 0.70


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement")
    parser.add_argument("--profile", action="store_true", help="print a profile of ours")
    args = parser.parse_args(argv)
    print(f"credentials: {machine_summary()}")
    with tempfile.TemporaryDirectory() as folder:
        world = build_world(Path(folder))
        try:
            records = run(world, args)
        finally:
            world.close()
    print_table(records, title="credential verification, warm (ops/s)")
    write_results("credentials", records)
    return 0


def run(world: object, args: argparse.Namespace) -> list[Record]:
    from tests.credentials.world import World

    assert isinstance(world, World)
    token = world.issue(world.fuji, sensor_safety(), format=Format.VC_JWT)
    verifier = world.verifier()
    first = verifier.verify(token, at=NOW)
    if first.issuer_route != "bridge" or first.accredited_by is None:
        raise RuntimeError("the benchmark credential must come over the bridge, accredited")
    fetches = world.fetcher.count
    key = ECKey.import_key(
        world.fuji.certificate.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
    )
    registry = jws.JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = 16 * 1024  # the x5c chain is longer than joserfc's 512 bytes
    jws.deserialize_compact(token, key, registry=registry)

    def ours() -> None:
        verifier.verify(token, at=NOW)

    def baseline() -> None:
        jws.deserialize_compact(token, key, registry=registry)

    if args.profile:

        def many() -> None:
            for _ in range(2000):
                ours()

        profile("warm vc+jwt verification x2000", many, 30)
    timed = Paired.measure(ours, baseline, seconds=args.seconds)
    if world.fetcher.count != fetches:
        raise RuntimeError("the warm verification fetched something: not warm")
    name = f"joserfc {version('joserfc')} jws.deserialize_compact (ES256, P-256 leaf key)"

    def record(pair: Paired, variant: str, goal: float | None) -> Record:
        return rate_record(
            "verify-warm",
            unit="ops/s",
            ours=round(1 / pair.ours, 1),
            baseline=round(1 / pair.baseline, 1),
            baseline_name=name,
            goal=goal,
            variant=variant,
        )

    print(
        f"vc+jwt: {1 / timed.ours:,.0f} verifications/s ({timed.ours * 1e6:.1f} us); "
        f"raw ES256 JWS {1 / timed.baseline:,.0f}/s ({timed.baseline * 1e6:.1f} us)"
    )
    records = [record(timed, "vc+jwt", GOAL)]
    sd = world.issue(world.fuji, sensor_safety(), format=Format.SD_JWT)
    presentation = present(
        sd, holder=world.hayabusa.holder.signer, audience="a", nonce="n", issued_at=NOW
    )
    verifier.verify(presentation, at=NOW, audience="a", nonce="n")
    timed_sd = Paired.measure(
        lambda: verifier.verify(presentation, at=NOW, audience="a", nonce="n"),
        baseline,
        seconds=args.seconds,
    )
    print(
        f"dc+sd-jwt presentation: {1 / timed_sd.ours:,.0f}/s ({timed_sd.ours * 1e6:.1f} us; "
        "two signatures: issuer and key binding)"
    )
    records.append(record(timed_sd, "dc+sd-jwt-presentation", None))
    return records


if __name__ == "__main__":
    sys.exit(main())
