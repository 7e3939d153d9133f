"""String processing: generate text, tokenize it by hand, count words, format a report.

A hand-written character-level tokenizer (a pure-Python loop over every character, many line
events with small string locals), word statistics in dicts, and formatting with f-strings,
str.format, %-formatting, justification and wrapping.

Usage: python strings.py [SIZE]; prints `checksum: ...` and, on stderr, `inner-seconds: ...`.
"""

from __future__ import annotations

import sys
import time
import zlib

DEFAULT_SIZE = 60

VOCABULARY = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega record replay trace step frame value variable line "
    "call return yield await raise catch store chunk index cursor thread"
)
WORDS = VOCABULARY.split()
PUNCTUATION = [".", ",", ";", ":", "!", "?", " -", " (x)", " 42", " 3.14"]


def generate_text(paragraphs: int, seed: int) -> str:
    """Deterministic pseudo-text: sentences of words, numbers and punctuation."""
    state = seed
    lines = []
    for _ in range(paragraphs):
        sentence = []
        for _ in range(60):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            word = WORDS[state % len(WORDS)]
            if state % 7 == 0:
                word = word.capitalize()
            if state % 11 == 0:
                word += PUNCTUATION[state % len(PUNCTUATION)]
            sentence.append(word)
        lines.append(" ".join(sentence))
    return "\n".join(lines)


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split text into (kind, token) pairs: word, number, punct; whitespace is dropped."""
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isalpha():
            start = i
            while i < n and text[i].isalpha():
                i += 1
            tokens.append(("word", text[start:i]))
        elif ch.isdigit():
            start = i
            while i < n and (text[i].isdigit() or text[i] == "."):
                i += 1
            tokens.append(("number", text[start:i]))
        else:
            tokens.append(("punct", ch))
            i += 1
    return tokens


def word_stats(tokens: list[tuple[str, str]]) -> dict[str, int]:
    """Case-folded word frequencies."""
    counts: dict[str, int] = {}
    for kind, token in tokens:
        if kind == "word":
            key = token.casefold()
            counts[key] = counts.get(key, 0) + 1
    return counts


def format_report(counts: dict[str, int], tokens: list[tuple[str, str]]) -> str:
    """A report mixing the common formatting styles."""
    lines = ["{:<12}|{:>8}|{:>8}".format("word", "count", "share")]
    total = sum(counts.values()) or 1
    for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:20]:
        share = 100.0 * count / total
        lines.append(f"{word:<12}|{count:>8d}|{share:>7.2f}%")
    numbers = [float(token) for kind, token in tokens if kind == "number"]
    lines.append("numbers: %d, sum %.2f" % (len(numbers), sum(numbers)))  # noqa: UP031 - on purpose
    puncts = "".join(token for kind, token in tokens if kind == "punct")
    lines.append("punctuation: " + puncts[:40].center(44, "*"))
    return "\n".join(line.rstrip() for line in lines)


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap, by hand."""
    out = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        out.append(current)
    return out


def run(size: int) -> int:
    """Process `size` documents of 8 paragraphs each; the checksum is a CRC of the reports."""
    crc = 0
    for seed in range(size):
        text = generate_text(8, seed)
        tokens = tokenize(text)
        report = format_report(word_stats(tokens), tokens)
        wrapped = wrap(text, 72)
        crc = zlib.crc32(report.encode(), crc)
        crc = zlib.crc32("\n".join(wrapped).encode(), crc)
    return crc


def main() -> None:
    """Run with the size from argv[1]; print the checksum (stdout) and in-process time (stderr)."""
    size = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    start = time.perf_counter()
    checksum = run(size)
    elapsed = time.perf_counter() - start
    print(f"checksum: {checksum}")
    print(f"inner-seconds: {elapsed:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
