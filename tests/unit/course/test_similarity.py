"""Similarity flags: what counts as the same work, and what never does."""

from __future__ import annotations

from autograder.course.similarity import fingerprints, flag_pairs, own_code

TEMPLATE = '''def relu(x):
    """Elementwise max(0, x)."""
    raise NotImplementedError("relu")


def softmax(x):
    raise NotImplementedError("softmax")
'''

ALICE = '''def relu(x):
    """Elementwise max(0, x)."""
    out = x.copy()
    out[out < 0] = 0
    return out


def softmax(x):
    shifted = x - x.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)
    return e / total
'''

# alice's code with every name changed and comments added: the same work
ALICE_RENAMED = '''def relu(values):
    """Elementwise max(0, x)."""
    # copy first
    result = values.copy()
    result[result < 0] = 0
    return result


def softmax(scores):
    moved = scores - scores.max(axis=1, keepdims=True)
    ex = np.exp(moved)
    norm = ex.sum(axis=1, keepdims=True)
    return ex / norm
'''

BOB = '''def relu(x):
    """Elementwise max(0, x)."""
    return np.maximum(x, 0)


def softmax(x):
    z = np.exp(x - np.max(x, axis=-1)[:, None])
    return z / np.sum(z, axis=-1)[:, None]
'''


def _own(*codes: str) -> dict[str, str]:
    return {f"s{i}": own_code(c, TEMPLATE) for i, c in enumerate(codes)}


def test_template_lines_are_not_the_students_own() -> None:
    assert "NotImplementedError" not in own_code(TEMPLATE + "\nx = 1\n", TEMPLATE)
    assert own_code(TEMPLATE, TEMPLATE).strip() == ""


def test_renamed_copy_is_flagged_and_different_work_is_not() -> None:
    pairs = flag_pairs(_own(ALICE, ALICE_RENAMED, BOB))
    assert [(p.a, p.b, p.kind) for p in pairs] == [("s0", "s1", "similar")]
    assert pairs[0].score >= 0.9


def test_identical_own_code_is_flagged_as_identical() -> None:
    [pair] = flag_pairs(_own(ALICE, ALICE + "\n\n"))  # trailing blank lines differ
    assert pair.kind in ("identical", "similar") and pair.score == 1.0


def test_untouched_templates_are_never_a_pair() -> None:
    """Every student who submits nothing has the same (empty) own code: not a flag."""
    assert flag_pairs(_own(TEMPLATE, TEMPLATE, TEMPLATE)) == []


def test_fingerprints_ignore_names_numbers_and_strings() -> None:
    assert fingerprints("a = b + 1\nc = d * 'x'\n" * 3) == fingerprints("p = q + 7\nr = s * 'y'\n" * 3)
    assert fingerprints("a = b + 1\n" * 5) != fingerprints("a = b - 1\n" * 5)
