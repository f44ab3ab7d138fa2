"""PDF plumbing for contracts: layout (fpdf2), the attached terms, and pyhanko adapters.

Nothing here decides anything; :mod:`trustbridge.exchange.contract` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any, ClassVar, TypeVar

from asn1crypto import core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fpdf import FPDF
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec, embed_file
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.rw_common import PdfHandler
from pyhanko.pdf_utils.writer import copy_into_new_writer
from pyhanko.sign import fields as pdf_fields
from pyhanko.sign.signers import Signer as PyhankoSigner
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from trustbridge.pki.signers import Signer, sign_bytes

__all__ = [
    "TERMS_FILE_NAME",
    "CallbackTimeStamper",
    "FieldBox",
    "PdfSignerAdapter",
    "asn1_certificate",
    "embedded_file",
    "render_pdf",
    "run",
]

#: The name the canonical terms travel under, inside the PDF.
TERMS_FILE_NAME = "terms.json"

_T = TypeVar("_T")
_MM = 72 / 25.4  # PDF points per millimetre
_BOX_HEIGHT_MM = 22.0
_MARGIN_MM = 18.0


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run one of pyhanko's coroutines to completion (the core API is synchronous)."""
    return asyncio.run(coroutine)


def asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))


# -- layout ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldBox:
    """An empty signature field to create: its name and the caption printed above it."""

    name: str
    caption: str


def _latin1(text: str) -> tuple[str, bool]:
    """``text`` in what the core PDF fonts can show, and whether anything was replaced."""
    shown = text.encode("latin-1", "replace").decode("latin-1")
    return shown, shown != text


def render_pdf(
    *,
    title: str,
    sections: Sequence[tuple[str, Sequence[str]]],
    attachment: bytes,
    attachment_description: str,
    fields: Sequence[FieldBox],
    created: datetime,
) -> bytes:
    """A one-revision PDF: the sections as text, ``attachment`` as ``terms.json`` (an
    associated file of the document, relationship Data), and one empty signature field per
    entry of ``fields`` below the text."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(created)
    pdf.set_title(_latin1(title)[0])
    pdf.set_auto_page_break(auto=True, margin=_MARGIN_MM)
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.add_page()
    replaced = False
    width = pdf.w - 2 * _MARGIN_MM

    def write(text: str, *, size: float, style: str = "", gap: float = 1.0) -> None:
        nonlocal replaced
        shown, lost = _latin1(text)
        replaced = replaced or lost
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, size * 0.5, shown, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    write(title, size=16, style="B", gap=4)
    for heading, lines in sections:
        write(heading, size=12, style="B", gap=1)
        for line in lines:
            write(line, size=10)
        pdf.ln(3)
    write(
        f"The machine-readable terms are attached to this document as {TERMS_FILE_NAME}; "
        "where this text and the attachment differ, the attachment prevails.",
        size=8,
        style="I",
    )
    if replaced:
        write("Characters the document font cannot show are printed as '?'.", size=8, style="I")
    # The signature fields, side by side below the text.
    needed = 8 + _BOX_HEIGHT_MM
    if pdf.get_y() + needed > pdf.h - _MARGIN_MM:
        pdf.add_page()
    pdf.ln(4)
    top = pdf.get_y()
    gap = 8.0
    box_width = (width - gap * (len(fields) - 1)) / max(len(fields), 1)
    boxes: list[tuple[str, tuple[int, int, int, int]]] = []
    pdf.set_font("Helvetica", size=9)
    for index, spec in enumerate(fields):
        left = _MARGIN_MM + index * (box_width + gap)
        pdf.set_xy(left, top)
        pdf.cell(box_width, 5, _latin1(spec.caption)[0])
        pdf.rect(left, top + 6, box_width, _BOX_HEIGHT_MM)
        # PDF user space: points, origin bottom left
        x1, x2 = left * _MM, (left + box_width) * _MM
        y2 = (pdf.h - (top + 6)) * _MM
        y1 = y2 - _BOX_HEIGHT_MM * _MM
        boxes.append((spec.name, (round(x1), round(y1), round(x2), round(y2))))
    page = pdf.page - 1
    rendered = bytes(pdf.output())

    writer = copy_into_new_writer(PdfFileReader(BytesIO(rendered)))
    data = EmbeddedFileObject.from_file_data(
        writer,
        attachment,
        mime_type="application/json",
        params=EmbeddedFileParams(creation_date=created, modification_date=created),
    )
    embed_file(
        writer,
        FileSpec(
            file_spec_string=TERMS_FILE_NAME,
            file_name=TERMS_FILE_NAME,
            embedded_data=data,
            description=attachment_description,
            af_relationship=generic.pdf_name("/Data"),
        ),
    )
    for name, box in boxes:
        pdf_fields.append_signature_field(
            writer, pdf_fields.SigFieldSpec(sig_field_name=name, on_page=page, box=box)
        )
    out = BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def embedded_file(handler: PdfHandler, name: str) -> bytes | None:
    """The data of the document-level attachment ``name``, None if there is none."""
    try:
        names = handler.root["/Names"]["/EmbeddedFiles"]["/Names"]
    except (KeyError, TypeError):
        return None
    entries = list(names)
    found: list[bytes] = []
    for key, value in zip(entries[0::2], entries[1::2], strict=False):
        if str(key) != name:
            continue
        spec = value.get_object()
        try:
            stream = spec["/EF"]["/F"].get_object()
        except (KeyError, TypeError):
            continue
        if isinstance(stream, generic.StreamObject):
            found.append(stream.data)
    # Two attachments of the same name would make the terms ambiguous.
    return found[0] if len(found) == 1 else None


# -- pyhanko adapters -----------------------------------------------------------------------------


class PdfSignerAdapter(PyhankoSigner):
    """A pyhanko signer whose raw signatures come from our :class:`Signer` (file or PKCS#11)."""

    def __init__(
        self, signer: Signer, chain: Sequence[x509.Certificate], *, digest_algorithm: str
    ) -> None:
        certificates = [asn1_certificate(c) for c in chain]
        super().__init__(
            signing_cert=certificates[0],
            cert_registry=SimpleCertificateStore.from_certs(certificates),  # type: ignore[no-untyped-call]
        )
        self._signer = signer
        self._digest_algorithm = digest_algorithm

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if digest_algorithm != self._digest_algorithm:
            # sign_bytes hashes with the key type's algorithm; the CMS must name the same.
            raise ValueError(
                f"digest {digest_algorithm} requested, the key signs with {self._digest_algorithm}"
            )
        return sign_bytes(self._signer, data)


class CallbackTimeStamper(TimeStamper):
    """A pyhanko time stamper that hands the DER request to a callable (RFC 3161)."""

    def __init__(self, client: Callable[[bytes], bytes]) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._client = client

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        answer = self._client(req.dump())
        try:
            status = _StatusOnly.load(answer)["status"]
            granted = status["status"].native in ("granted", "granted_with_mods")
            texts = status["status_string"].native or []
        except (ValueError, TypeError) as exc:
            raise OSError("the time-stamp authority's answer is not a TimeStampResp") from exc
        if not granted:
            raise OSError(
                "the time-stamp authority refused the request: "
                + ("; ".join(str(t) for t in texts) or str(status["status"].native))
            )
        # The token is left undecoded: decoding it (``.native``) would make asn1crypto
        # re-encode it, slowly, each time the signature is serialized.
        return tsp.TimeStampResp.load(answer)


class _StatusOnly(core.Sequence):  # type: ignore[misc]
    """RFC 3161 2.4.2 TimeStampResp, with the token optional (absent when refused)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", core.Any, {"optional": True}),
    ]
