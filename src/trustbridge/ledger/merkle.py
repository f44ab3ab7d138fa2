"""The Merkle tree of a transparency log, its proofs and their verification (RFC 9162 2.1).

:class:`MerkleTree` is the log's side: an append-only tree in memory that computes roots,
inclusion proofs and consistency proofs for any earlier size. The module functions are the
client's side: they check a proof against a root without holding the tree, and raise
:class:`~trustbridge.ledger.errors.ProofError` when it does not verify.

Hashing is RFC 9162 with SHA-256: a leaf hashes as ``SHA-256(0x00 || data)``, an interior node
as ``SHA-256(0x01 || left || right)``, the empty tree as ``SHA-256("")``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from trustbridge.errors import InputError
from trustbridge.ledger.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in a SHA-256 hash: every leaf hash, node hash, root and proof element."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (RFC 9162 2.1.1): the root of the empty tree."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_NODE_SEED = hashlib.sha256(_NODE_PREFIX)
_MAX_SIZE = 1 << 64  # tree sizes are uint64 in checkpoints and on the wire


def leaf_hash(data: bytes) -> bytes:
    """The hash of a log entry: ``SHA-256(0x00 || data)`` (RFC 9162 2.1.1)."""
    digest = hashlib.sha256(_LEAF_PREFIX)
    digest.update(data)
    return digest.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)`` (RFC 9162 2.1.1)."""
    digest = _NODE_SEED.copy()
    digest.update(left)
    digest.update(right)
    return digest.digest()


class MerkleTree:
    """An append-only RFC 9162 Merkle tree held in memory.

    Level ``k`` keeps the hashes of the complete, aligned subtrees of ``2**k`` leaves
    (``D[i * 2**k : (i + 1) * 2**k]``) in one contiguous ``bytearray``; level 0 holds the leaf
    hashes. Any subtree the RFC 9162 algorithms need is either one stored node or, on the right
    edge of a smaller tree, a fold of a few stored nodes, so roots and proofs for any size cost
    O(log n). A million entries take about 64 MB.

    Not thread-safe: guard a tree shared between threads with a lock.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    # -- building ---------------------------------------------------------------------------

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; return its 0-based index."""
        _check_leaf_hash(leaf_hash, self.size)
        levels = self._levels
        levels[0] += leaf_hash
        index = len(levels[0]) // HASH_SIZE - 1
        level, count = 0, index + 1
        while count % 2 == 0:  # the new node completed a pair: its parent is complete too
            below = levels[level]
            parent = node_hash(bytes(below[-2 * HASH_SIZE : -HASH_SIZE]), bytes(below[-HASH_SIZE:]))
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parent
            count //= 2
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes at once (all or none: a bad hash leaves the tree unchanged)."""
        levels = self._levels
        start = self.size
        batch = bytearray()
        for offset, digest in enumerate(leaf_hashes):
            _check_leaf_hash(digest, start + offset)
            batch += digest
        if not batch:
            return
        levels[0] += batch
        low, high = start, self.size  # nodes [low, high) of this level are new
        level = 0
        while high // 2 > low // 2:
            below = memoryview(levels[level])
            width = 2 * HASH_SIZE
            seed = _NODE_SEED
            parents = bytearray()
            for pos in range((low // 2) * width, (high // 2) * width, width):
                hasher = seed.copy()
                hasher.update(below[pos : pos + width])
                parents += hasher.digest()
            below.release()
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parents
            low, high = low // 2, high // 2

    # -- reading ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index`` (0-based)."""
        if not 0 <= index < self.size:
            raise InputError(f"no leaf {index} in a Merkle tree of {self.size} leaves")
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]): the root of the tree of the first ``size`` leaves (default: all)."""
        if size is None:
            size = self.size
        self._check_size(size, "root")
        if size == 0:
            return EMPTY_ROOT
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 9162 2.1.3.1): the audit path of a leaf, leaf side first."""
        self._check_size(size, "inclusion proof")
        if not 0 <= index < size:
            raise InputError(
                f"no inclusion proof for leaf {index} in a tree of size {size}: "
                f"the leaf index must be below the size"
            )
        # RFC 9162 2.1.3.1, unrolled: walk from the root to the leaf, noting each sibling.
        siblings: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:  # the leaf is in D[start:start+k]; sibling is D[start+k:end]
                siblings.append(self._subtree(start + k, end))
                end = start + k
            else:  # the leaf is in D[start+k:end]; sibling is D[start:start+k]
                siblings.append(self._subtree(start, start + k))
                start += k
        siblings.reverse()
        return siblings

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[0:second]) (RFC 9162 2.1.4.1); empty when ``first == second``."""
        self._check_size(second, "consistency proof")
        if not 0 < first <= second:
            raise InputError(
                f"no consistency proof from size {first} to size {second}: "
                f"the first size must be at least 1 and at most the second"
            )
        # SUBPROOF(m, D[start:start+width], b), unrolled from the top: every step adds one
        # sibling, and the innermost subtree is added only when it is not the old tree itself.
        siblings: list[bytes] = []
        start, width, m = 0, second, first
        whole_old_tree = True  # b in RFC 9162 2.1.4.1
        while m != width:
            k = _split(width)
            if m <= k:  # the old tree ends in the left subtree; the right one is all new
                siblings.append(self._subtree(start + k, start + width))
                width = k
            else:  # the left subtree is in both trees; recurse into the right one
                siblings.append(self._subtree(start, start + k))
                start, width, m = start + k, width - k, m - k
                whole_old_tree = False
        proof = [] if whole_old_tree else [self._subtree(start, start + width)]
        proof.extend(reversed(siblings))
        return proof

    # -- internals --------------------------------------------------------------------------

    def _check_size(self, size: int, what: str) -> None:
        if not 0 <= size <= self.size:
            raise InputError(f"no {what} for size {size}: the Merkle tree has {self.size} leaves")

    def _node(self, level: int, index: int) -> bytes:
        """The stored hash of the complete subtree D[index * 2**level : (index + 1) * 2**level]."""
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a subtree that RFC 9162 recursion reaches (``end > start``).

        Such a subtree starts at a multiple of the smallest power of two >= its width, so it is
        the fold, right to left, of the complete aligned subtrees of its width's binary
        decomposition (largest first), each a stored node.
        """
        width = end - start
        parts: list[bytes] = []
        position = start
        for level in range(width.bit_length() - 1, -1, -1):
            if width >> level & 1:
                parts.append(self._node(level, position >> level))
                position += 1 << level
        result = parts.pop()
        while parts:
            result = node_hash(parts.pop(), result)
        return result


def _split(width: int) -> int:
    """k: the largest power of two smaller than ``width`` (``width > 1``, RFC 9162 2.1.1)."""
    return 1 << ((width - 1).bit_length() - 1)


def _check_leaf_hash(digest: bytes, index: int) -> None:
    if not isinstance(digest, bytes | bytearray | memoryview) or len(digest) != HASH_SIZE:
        size = len(digest) if isinstance(digest, bytes | bytearray | memoryview) else None
        shown = f"{size} bytes" if size is not None else type(digest).__name__
        raise InputError(
            f"leaf hash {index} is {shown}, not a {HASH_SIZE}-byte SHA-256 hash",
            hint="append leaf_hash(entry), not the entry itself",
        )


# -- verification ---------------------------------------------------------------------------


def _inclusion_length(index: int, size: int) -> int:
    """The number of hashes in PATH(index, D[0:size])."""
    length, start, end = 0, 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            end = start + k
        else:
            start += k
        length += 1
    return length


def _consistency_length(first: int, second: int) -> int:
    """The number of hashes in PROOF(first, D[0:second]) for ``0 < first < second``."""
    length, width, m, whole_old_tree = 0, second, first, True
    while m != width:
        k = _split(width)
        if m <= k:
            width = k
        else:
            width, m, whole_old_tree = width - k, m - k, False
        length += 1
    return length if whole_old_tree else length + 1


def _check_hashes(proof: Sequence[bytes], what: str) -> None:
    for position, digest in enumerate(proof):
        if not isinstance(digest, bytes) or len(digest) != HASH_SIZE:
            raise ProofError(f"{what}: element {position} is not a {HASH_SIZE}-byte SHA-256 hash")


def _check_hash(digest: bytes, name: str, what: str) -> None:
    if not isinstance(digest, bytes) or len(digest) != HASH_SIZE:
        raise ProofError(f"{what}: the {name} is not a {HASH_SIZE}-byte SHA-256 hash")


def _short(digest: bytes) -> str:
    return digest.hex()[:16] + "…"


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof of leaf ``index`` in a tree of ``size`` leads to.

    Raises ProofError when the proof cannot belong to that index and size (wrong length,
    malformed hashes). Compare the result with a trusted root, or use :func:`verify_inclusion`.
    """
    what = f"inclusion proof for leaf {index} in a tree of size {size}"
    if not 0 <= index < size < _MAX_SIZE:
        raise ProofError(f"{what}: the leaf index must be below the tree size")
    _check_hash(leaf_hash, "leaf hash", what)
    _check_hashes(proof, what)
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        raise ProofError(
            f"{what} has {len(proof)} hashes, expected {expected}: it is for another tree"
        )
    # RFC 9162 2.1.3.2, steps 2-5.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"{what} is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"{what} is too short")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf ``index`` with ``leaf_hash`` is in the tree of ``size`` with ``root``.

    RFC 9162 2.1.3.2. Returns nothing; raises ProofError when the proof does not verify.
    """
    what = f"inclusion proof for leaf {index} in a tree of size {size}"
    _check_hash(root, "root", what)
    computed = root_from_inclusion(leaf_hash, index, size, proof)
    if not hmac.compare_digest(computed, root):
        raise ProofError(
            f"{what} does not verify: it leads to root {_short(computed)}, "
            f"not {_short(root)} (another leaf, another tree, or a forged proof)"
        )


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``second`` leaves extends the tree of ``first`` leaves.

    RFC 9162 2.1.4.2. Equal sizes need equal roots and an empty proof. The empty tree
    (``first == 0``) is a prefix of every tree: its root must be :data:`EMPTY_ROOT` and its
    proof empty. Returns nothing; raises ProofError when the proof does not verify.
    """
    what = f"consistency proof from size {first} to size {second}"
    if not 0 <= first <= second < _MAX_SIZE:
        raise ProofError(f"{what}: the first size must not exceed the second")
    _check_hash(first_root, "first root", what)
    _check_hash(second_root, "second root", what)
    _check_hashes(proof, what)
    if first == second:
        if proof:
            raise ProofError(f"{what} must be empty for equal sizes, has {len(proof)} hashes")
        if not hmac.compare_digest(first_root, second_root):
            raise ProofError(
                f"{what}: two different roots ({_short(first_root)}, {_short(second_root)}) "
                f"for the same size"
            )
        return
    if first == 0:
        if proof:
            raise ProofError(f"{what} must be empty from the empty tree, has {len(proof)} hashes")
        if not hmac.compare_digest(first_root, EMPTY_ROOT):
            raise ProofError(f"{what}: the root of the empty tree must be SHA-256 of nothing")
        return
    expected = _consistency_length(first, second)
    if len(proof) != expected:
        raise ProofError(
            f"{what} has {len(proof)} hashes, expected {expected}: it is for other trees"
        )
    # RFC 9162 2.1.4.2, steps 2-7.
    path = list(proof)
    if first & (first - 1) == 0:  # first is an exact power of 2
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"{what} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"{what} is too short")
    if not hmac.compare_digest(fr, first_root):
        raise ProofError(
            f"{what} does not verify: it leads to first root {_short(fr)}, not {_short(first_root)}"
        )
    if not hmac.compare_digest(sr, second_root):
        raise ProofError(
            f"{what} does not verify: it leads to second root {_short(sr)}, "
            f"not {_short(second_root)}"
        )
