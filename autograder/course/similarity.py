"""Similarity flags for grade-all: identical submissions, and near-duplicates of the
students' own code by token fingerprints (winnowing, as MOSS does).

Written here rather than taken from a library: the well-kept plagiarism tools (MOSS, JPlag)
are services or Java programs, and the part needed is small: Python tokens with names,
numbers and strings normalized (renaming a variable changes nothing), lines of the template
removed first (every student starts from them), k-grams hashed, the minimum of each window
kept (Schleimer, Wilkerson and Aiken, SIGMOD 2003). A flag is never a grade change.
"""

from __future__ import annotations

import hashlib
import io
import keyword
import token
import tokenize
from dataclasses import dataclass
from itertools import combinations

K = 5  # tokens per k-gram: shorter matches are common idioms
WINDOW = 4  # a match of WINDOW + K - 1 tokens or more is always found
MIN_FINGERPRINTS = 8  # less own code than this is never flagged (a near-empty template)
# Shared fingerprints over all of the pair's (Jaccard): containment (over the smaller set)
# would flag every student whose short correct answer is part of a longer one.
THRESHOLD = 0.7


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float  # 1.0 for identical own code
    kind: str  # "identical" or "similar"


def own_code(source: str, template: str) -> str:
    """``source`` without the lines that also appear in the template, compared as
    normalized tokens (a renamed argument in a given signature is still the template's)."""
    given = {_line_key(line) for line in template.splitlines() if line.strip()}
    return "\n".join(line for line in source.splitlines()
                     if line.strip() and _line_key(line) not in given)


def _line_key(line: str) -> str:
    return " ".join(tokens(line.strip()))


def tokens(source: str) -> list[str]:
    """Normalized Python tokens; text that does not tokenize is split on whitespace."""
    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (token.COMMENT, token.NL, token.NEWLINE, token.INDENT, token.DEDENT,
                            token.ENDMARKER, tokenize.ENCODING):
                continue
            if tok.type == token.NAME:
                out.append(tok.string if keyword.iskeyword(tok.string) else "N")
            elif tok.type == token.NUMBER:
                out.append("0")
            elif tok.type == token.STRING:
                out.append("S")
            else:
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source.split()
    return out


def fingerprints(source: str) -> frozenset[int]:
    toks = tokens(source)
    grams = [int.from_bytes(hashlib.blake2b(" ".join(toks[i:i + K]).encode(),
                                            digest_size=8).digest(), "big")
             for i in range(len(toks) - K + 1)]
    if len(grams) <= WINDOW:
        return frozenset(grams)
    return frozenset(min(grams[i:i + WINDOW]) for i in range(len(grams) - WINDOW + 1))


def flag_pairs(own: dict[str, str], threshold: float = THRESHOLD) -> list[Pair]:
    """Pairs of submissions (name -> own code) that are identical or share at least
    ``threshold`` of their fingerprints, most similar first."""
    prints = {name: fingerprints(code) for name, code in own.items()}
    digests = {name: hashlib.sha256(code.encode()).hexdigest() for name, code in own.items()}
    pairs = []
    for a, b in combinations(sorted(own), 2):
        fa, fb = prints[a], prints[b]
        if min(len(fa), len(fb)) < MIN_FINGERPRINTS:
            continue
        if digests[a] == digests[b]:
            pairs.append(Pair(a, b, 1.0, "identical"))
            continue
        score = len(fa & fb) / len(fa | fb)
        if score >= threshold:
            pairs.append(Pair(a, b, round(score, 3), "similar"))
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))
