"""The RFC 9162 Merkle tree, checked against published vectors and against pymerkle.

pymerkle (7.0, test-only) is an independent implementation: its in-memory tree hashes like
RFC 9162 (SHA-256, 0x00/0x01 prefixes), counts leaves from 1, and returns its inclusion paths
with the leaf hash in front. Its consistency proofs have another shape than RFC 9162's (it
descends into the new part of the tree down to a leaf, where RFC 9162 stops at the subtree), so
:func:`_rfc9162_from_pymerkle` folds the extra hashes back into the one RFC 9162 sends.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from pymerkle import InmemoryTree
from pymerkle.core import _consistency_path_layout

from trustbridge.errors import InputError
from trustbridge.ledger import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

# -- known answers ------------------------------------------------------------------------------
# RFC 6962 test vectors of transparency-dev/merkle (testonly/constants.go and
# proof/verify_test.go), the library of certificate-transparency-go and Trillian. The leaf
# indexes of verify_test.go count from 1; here they count from 0.

CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
H = {
    name: bytes.fromhex(value)
    for name, value in {
        "leaf1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "leaf4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "leaf6": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "2:4": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "4:6": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "6:8": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "4:8": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    }.items()
}
CT_INCLUSION = [  # (index, size, proof)
    (0, 1, []),
    (0, 8, [H["leaf1"], H["2:4"], H["4:8"]]),
    (5, 8, [H["leaf4"], H["6:8"], CT_ROOTS[4]]),
    (2, 3, [CT_ROOTS[2]]),
    (1, 5, [CT_ROOTS[1], H["2:4"], H["leaf4"]]),
]
CT_CONSISTENCY = [  # (first, second, proof)
    (1, 1, []),
    (1, 8, [H["leaf1"], H["2:4"], H["4:8"]]),
    (6, 8, [H["4:6"], H["6:8"], CT_ROOTS[4]]),
    (2, 5, [H["2:4"], H["leaf4"]]),
    (6, 7, [H["4:6"], H["leaf6"], CT_ROOTS[4]]),
]


@pytest.fixture(scope="module")
def ct_tree() -> MerkleTree:
    return MerkleTree(leaf_hash(data) for data in CT_LEAVES)


def test_hashing_is_rfc9162() -> None:
    assert CT_ROOTS[0] == EMPTY_ROOT
    assert leaf_hash(b"") == CT_ROOTS[1]
    assert node_hash(leaf_hash(b""), leaf_hash(b"\x00")) == CT_ROOTS[2]


def test_roots_match_the_ct_vectors_at_every_size(ct_tree: MerkleTree) -> None:
    assert [ct_tree.root(size) for size in range(9)] == CT_ROOTS
    assert ct_tree.root() == CT_ROOTS[8]
    assert MerkleTree().root() == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_inclusion_proofs_match_the_ct_vectors(
    ct_tree: MerkleTree, index: int, size: int, proof: list[bytes]
) -> None:
    assert ct_tree.inclusion_proof(index, size) == proof
    verify_inclusion(leaf_hash(CT_LEAVES[index]), index, size, proof, CT_ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_ct_vectors(
    ct_tree: MerkleTree, first: int, second: int, proof: list[bytes]
) -> None:
    assert ct_tree.consistency_proof(first, second) == proof
    verify_consistency(first, second, CT_ROOTS[first], CT_ROOTS[second], proof)


# -- against pymerkle ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    ours: MerkleTree
    theirs: Any  # pymerkle.InmemoryTree (untyped)


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not keys


def _random_entries(seed: int, count: int) -> list[bytes]:
    rng = _rng(seed)
    return [rng.randbytes(rng.randrange(0, 48)) for _ in range(count)]


def _pair(entries: Sequence[bytes]) -> Pair:
    theirs = InmemoryTree()
    # RFC 9162 hashing, or the comparison means nothing.
    assert theirs.algorithm == "sha256"
    assert (theirs.leaf_prefix, theirs.node_prefix) == (b"\x00", b"\x01")
    theirs.append_entries(entries)
    return Pair(MerkleTree(leaf_hash(entry) for entry in entries), theirs)


@pytest.fixture(scope="module")
def pair() -> Pair:
    return _pair(_random_entries(9162, 300))


@pytest.fixture(scope="module", params=[1025, 4099])
def large_pair(request: pytest.FixtureRequest) -> Pair:
    size: int = request.param
    return _pair(_random_entries(size, size))


def _pymerkle_inclusion(tree: Any, index: int, size: int) -> list[bytes]:
    proof = tree.prove_inclusion(index + 1, size)
    assert proof.path[0] == tree.get_leaf(index + 1)  # pymerkle puts the leaf first
    return list(proof.path[1:])


def _rfc9162_from_pymerkle(proof: Any) -> list[bytes]:
    """The RFC 9162 consistency proof carried by a pymerkle consistency proof.

    pymerkle's path, bottom up, is: hashes of the new part below the point where RFC 9162 stops
    (subset 0), then the subtree of the old tree there (the first subset 1), then the siblings
    above, as in RFC 9162. Its first len(low) hashes fold (by its rule bits) into the one
    subtree RFC 9162 sends; the old-tree subtree is left out when it is the whole old tree
    (no other subset-1 hash above it), as SUBPROOF(m, D[n], true) does.
    """
    rule, subset, _ = _consistency_path_layout(proof.prior_size, proof.size)
    assert (rule, subset) == (proof.rule, proof.subset)
    if proof.prior_size == proof.size:
        return []
    path: list[bytes] = list(proof.path)
    old = subset.index(1)
    folded = path[0]
    for bit, digest in zip(rule, path[1:old], strict=False):
        folded = node_hash(folded, digest) if bit == 0 else node_hash(digest, folded)
    whole_old_tree = sum(subset) == 1
    return ([] if whole_old_tree else [path[old]]) + [folded] + path[old + 1 :]


def test_leaves_and_roots_at_every_size_equal_pymerkle(pair: Pair) -> None:
    for index in range(pair.ours.size):
        assert pair.ours.leaf(index) == pair.theirs.get_leaf(index + 1)
    for size in range(pair.ours.size + 1):
        assert pair.ours.root(size) == pair.theirs.get_root(size), size


def test_inclusion_proofs_equal_pymerkle_and_verify_both_ways(pair: Pair) -> None:
    rng = _rng(1)
    cases = [(index, size) for size in range(1, 33) for index in range(size)]
    cases += [(rng.randrange(size), size) for size in rng.choices(range(1, 301), k=400)]
    for index, size in cases:
        ours = pair.ours.inclusion_proof(index, size)
        assert ours == _pymerkle_inclusion(pair.theirs, index, size), (index, size)
        root, leaf = pair.ours.root(size), pair.ours.leaf(index)
        verify_inclusion(leaf, index, size, ours, root)
        assert root_from_inclusion(leaf, index, size, ours) == root
        # pymerkle's verifier accepts its proof for our leaf and root.
        pair.theirs.prove_inclusion(index + 1, size).verify(leaf, root, index + 1, size)


def test_consistency_proofs_equal_pymerkle_and_verify_both_ways(pair: Pair) -> None:
    rng = _rng(2)
    cases = [(first, second) for second in range(1, 33) for first in range(1, second + 1)]
    for _ in range(400):
        first, second = sorted(rng.sample(range(1, 301), 2))
        cases.append((first, second))
    for first, second in cases:
        ours = pair.ours.consistency_proof(first, second)
        theirs = pair.theirs.prove_consistency(first, second)
        assert ours == _rfc9162_from_pymerkle(theirs), (first, second)
        first_root, second_root = pair.ours.root(first), pair.ours.root(second)
        verify_consistency(first, second, first_root, second_root, ours)
        theirs.verify(first_root, second_root, first, second)


def test_large_trees_equal_pymerkle(large_pair: Pair) -> None:
    ours, theirs = large_pair.ours, large_pair.theirs
    size = ours.size
    rng = _rng(size)
    for probe in [*rng.sample(range(1, size + 1), 40), size, size - 1, 1024, 513]:
        assert ours.root(probe) == theirs.get_root(probe)
        index = rng.randrange(probe)
        assert ours.inclusion_proof(index, probe) == _pymerkle_inclusion(theirs, index, probe)
        first = rng.randrange(1, probe + 1)
        assert ours.consistency_proof(first, probe) == _rfc9162_from_pymerkle(
            theirs.prove_consistency(first, probe)
        )


# -- building -----------------------------------------------------------------------------------


def test_append_extend_and_constructor_build_the_same_tree() -> None:
    hashes = [leaf_hash(entry) for entry in _random_entries(7, 5000)]
    whole = MerkleTree(hashes)
    one_by_one = MerkleTree()
    for index, digest in enumerate(hashes[:700]):
        assert one_by_one.append(digest) == index
    mixed = MerkleTree(hashes[:3])
    rng = _rng(3)
    position = 3
    while position < len(hashes):
        step = rng.choice([1, 2, 3, 7, 64, 255, 1000])
        chunk = hashes[position : position + step]
        if rng.random() < 0.3:
            for digest in chunk:
                mixed.append(digest)
        else:
            mixed.extend(iter(chunk))  # any iterable, not only lists
        position += len(chunk)
        assert mixed.root() == whole.root(mixed.size)
    assert mixed._levels == whole._levels  # the stored subtree hashes too
    assert one_by_one.root() == whole.root(700)
    assert len(whole) == whole.size == 5000
    assert whole.leaf(4999) == hashes[4999]


def test_a_bad_leaf_hash_leaves_the_tree_unchanged() -> None:
    tree = MerkleTree([leaf_hash(b"a")])
    with pytest.raises(InputError, match=r"leaf hash 2 is 5 bytes, not a 32-byte"):
        tree.extend([leaf_hash(b"b"), b"short"])
    with pytest.raises(InputError, match=r"leaf hash 1 is str"):
        tree.append("not bytes")  # type: ignore[arg-type]
    assert tree.size == 1
    assert tree.root() == leaf_hash(b"a")


def test_arguments_outside_the_tree_are_refused(ct_tree: MerkleTree) -> None:
    with pytest.raises(InputError, match=r"no leaf 8 in a Merkle tree of 8 leaves"):
        ct_tree.leaf(8)
    with pytest.raises(InputError, match=r"no root for size 9: the Merkle tree has 8 leaves"):
        ct_tree.root(9)
    with pytest.raises(InputError, match=r"no inclusion proof for leaf 5 in a tree of size 5"):
        ct_tree.inclusion_proof(5, 5)
    with pytest.raises(InputError, match=r"no inclusion proof for size 9"):
        ct_tree.inclusion_proof(0, 9)
    with pytest.raises(InputError, match=r"no consistency proof from size 0 to size 4"):
        ct_tree.consistency_proof(0, 4)
    with pytest.raises(InputError, match=r"no consistency proof from size 5 to size 4"):
        ct_tree.consistency_proof(5, 4)
    with pytest.raises(InputError, match=r"no consistency proof for size 9"):
        ct_tree.consistency_proof(1, 9)


# -- proofs that must not verify ----------------------------------------------------------------


def _flip(proof: list[bytes], position: int) -> list[bytes]:
    changed = list(proof)
    changed[position] = bytes([changed[position][0] ^ 0x08]) + changed[position][1:]
    return changed


def test_inclusion_proof_for_another_tree_fails(pair: Pair) -> None:
    tree = pair.ours
    leaf, proof = tree.leaf(37), tree.inclusion_proof(37, 200)
    with pytest.raises(ProofError, match=r"does not verify: it leads to root"):
        verify_inclusion(leaf, 37, 200, proof, tree.root(201))  # another root
    with pytest.raises(ProofError, match=r"size 300 has 8 hashes, expected 9: it is for another"):
        verify_inclusion(leaf, 37, 300, proof, tree.root(300))  # another size
    with pytest.raises(ProofError, match=r"does not verify"):
        verify_inclusion(leaf, 36, 200, proof, tree.root(200))  # another index
    with pytest.raises(ProofError, match=r"does not verify"):
        verify_inclusion(tree.leaf(38), 37, 200, proof, tree.root(200))  # another leaf


def test_truncated_extended_or_flipped_inclusion_proofs_fail(pair: Pair) -> None:
    tree = pair.ours
    for index, size in [(0, 8), (5, 8), (37, 200), (299, 300), (256, 257)]:
        leaf, root = tree.leaf(index), tree.root(size)
        proof = tree.inclusion_proof(index, size)
        with pytest.raises(ProofError, match=r"hashes, expected"):
            verify_inclusion(leaf, index, size, proof[:-1], root)
        with pytest.raises(ProofError, match=r"hashes, expected"):
            verify_inclusion(leaf, index, size, [*proof, root], root)
        with pytest.raises(ProofError, match=r"hashes, expected"):
            verify_inclusion(leaf, index, size, [root, *proof], root)
        for position in range(len(proof)):
            with pytest.raises(ProofError, match=r"does not verify"):
                verify_inclusion(leaf, index, size, _flip(proof, position), root)


def test_inclusion_index_out_of_range_or_malformed_hashes_fail() -> None:
    digest = leaf_hash(b"x")
    for index, size in [(0, 0), (1, 1), (5, 3)]:
        with pytest.raises(ProofError, match=r"the leaf index must be below the tree size"):
            verify_inclusion(digest, index, size, [], digest)
    with pytest.raises(ProofError, match=r"the leaf hash is not a 32-byte"):
        verify_inclusion(b"short", 0, 1, [], digest)
    with pytest.raises(ProofError, match=r"the root is not a 32-byte"):
        verify_inclusion(digest, 0, 1, [], b"")
    with pytest.raises(ProofError, match=r"element 0 is not a 32-byte"):
        verify_inclusion(digest, 0, 2, [b"\x00" * 31], digest)
    verify_inclusion(digest, 0, 1, [], digest)  # a tree of one leaf: the leaf is the root


def test_consistency_proof_for_other_trees_fails(pair: Pair) -> None:
    tree = pair.ours
    proof = tree.consistency_proof(100, 250)
    r100, r250 = tree.root(100), tree.root(250)
    with pytest.raises(ProofError, match=r"second root"):
        verify_consistency(100, 250, r100, tree.root(251), proof)
    with pytest.raises(ProofError, match=r"first root"):
        verify_consistency(100, 250, tree.root(99), r250, proof)
    with pytest.raises(ProofError, match=r"does not verify"):
        verify_consistency(100, 250, r250, r100, proof)  # swapped
    with pytest.raises(ProofError, match=r"hashes, expected"):
        verify_consistency(100, 300, r100, tree.root(300), proof)
    with pytest.raises(ProofError, match=r"the first size must not exceed the second"):
        verify_consistency(250, 100, r250, r100, proof)
    # A tree that does not extend the old one: same size, other history.
    other = MerkleTree(leaf_hash(entry) for entry in _random_entries(1, 250))
    with pytest.raises(ProofError, match=r"does not verify"):
        verify_consistency(100, 250, r100, other.root(), other.consistency_proof(100, 250))


def test_truncated_extended_or_flipped_consistency_proofs_fail(pair: Pair) -> None:
    tree = pair.ours
    for first, second in [(1, 8), (6, 8), (2, 5), (6, 7), (100, 250), (128, 300), (299, 300)]:
        r1, r2 = tree.root(first), tree.root(second)
        proof = tree.consistency_proof(first, second)
        for changed in ([], proof[:-1], [*proof, r1], [*proof, r2], [r1, *proof], [*proof[1:]]):
            with pytest.raises(ProofError, match=r"hashes, expected"):
                verify_consistency(first, second, r1, r2, changed)
        for position in range(len(proof)):
            with pytest.raises(ProofError, match=r"does not verify"):
                verify_consistency(first, second, r1, r2, _flip(proof, position))


def test_consistency_of_equal_sizes_and_of_the_empty_tree() -> None:
    root = leaf_hash(b"x")
    verify_consistency(5, 5, root, root, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 7, EMPTY_ROOT, root, [])  # the empty tree is a prefix of every tree
    with pytest.raises(ProofError, match=r"two different roots .* for the same size"):
        verify_consistency(5, 5, root, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match=r"must be empty for equal sizes, has 1 hashes"):
        verify_consistency(5, 5, root, root, [root])
    with pytest.raises(ProofError, match=r"must be empty from the empty tree, has 1 hashes"):
        verify_consistency(0, 7, EMPTY_ROOT, root, [root])
    with pytest.raises(ProofError, match=r"the root of the empty tree must be SHA-256 of nothing"):
        verify_consistency(0, 7, root, root, [])
    with pytest.raises(ProofError, match=r"the first root is not a 32-byte"):
        verify_consistency(1, 2, b"", root, [root])


def test_levels_hold_about_two_hashes_per_leaf() -> None:
    """One bytearray per level, no object per node: 1M leaves take about 64 MB."""
    seed = hashlib.sha256(b"seed").digest()
    tree = MerkleTree([seed] * 4096)
    assert [len(level) // 32 for level in tree._levels] == [4096 >> k for k in range(13)]
    assert sum(len(level) for level in tree._levels) == 32 * (2 * 4096 - 1)
