#!/usr/bin/env python3
"""Fail when a document names a file path in the repository that does not exist.

Usage: check_doc_paths.py REPO_ROOT DOC [DOC...]   (DOCs relative to REPO_ROOT)

What counts as a path:
  - every word of an inline code span (`...`) or of a fenced code block
    that starts with a top-level directory of the repository (src/,
    include/, tests/, ...) or is a top-level file (Makefile, ...); such
    words are taken relative to the repository root;
  - the target of a markdown link or image, [text](target), taken relative
    to the document's directory, when it resolves to such a path.

Forms:
  - `src/print.[ch]` and `src/a.{c,h}` name every file they expand to;
  - globs (`tests/test_*.c`; a placeholder such as `<mode>` counts as `*`)
    are reported only when they match nothing;
  - a trailing `:LINE` or `#anchor` is dropped; a path ending in `/` must
    be a directory;
  - build outputs (build/, build-*/, ...) are not checked.

Prints `DOC:LINE: PATH: not found` for each missing path and exits 1 if
there was any, 0 otherwise.
"""

import glob
import os
import re
import sys

TOP_DIRS = ("src", "include", "tests", "bench", "docs", "tools", "demo", ".ci")
TOP_FILES = ("Makefile", "CMakeLists.txt", "README.md", "LICENSE")

CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
BLANK_LINE = re.compile(r"\n[ \t]*\n")
GLOB_CHARS = re.compile(r"[*?]")


def is_candidate(path):
    """A path that names something in the repository (not a build output)."""
    if path in TOP_FILES:
        return True
    first = path.split("/", 1)[0]
    return "/" in path and first in TOP_DIRS


def clean(word):
    """Strip what surrounds a path in prose or a command line."""
    word = re.sub(r"<[^<>/]*>", "*", word)  # placeholders: results-<mode>.csv
    word = word.strip("\"'()<>,;")
    word = word.split("#", 1)[0]
    word = re.sub(r":\d+(?::\d+)?$", "", word)  # file:line
    word = word.rstrip(".,;:")
    return word


def expand(path):
    """Expand the first [abc] or {a,b} group, recursively."""
    m = re.search(r"\[([A-Za-z0-9_.-]+)\]|\{([^{}]*,[^{}]*)\}", path)
    if not m:
        return [path]
    alts = list(m.group(1)) if m.group(1) is not None else m.group(2).split(",")
    out = []
    for a in alts:
        out.extend(expand(path[: m.start()] + a + path[m.end():]))
    return out


def exists(root, path):
    full = os.path.join(root, path)
    if path.endswith("/"):
        return os.path.isdir(full)
    return os.path.exists(full)


def missing_of(root, path):
    """The expansions of path that name nothing in the repository."""
    bad = []
    for p in expand(path):
        if GLOB_CHARS.search(p) or "[" in p:
            if not glob.glob(os.path.join(root, p)):
                bad.append(p)
        elif not exists(root, p):
            bad.append(p)
    return bad


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def mask(text, spans):
    """text with the given (start, end) ranges blanked, newlines kept."""
    chars = list(text)
    for a, b in spans:
        for i in range(a, b):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def references(text):
    """(offset, path, relative_to_doc) for every path-like reference."""
    refs = []
    # Fenced code blocks: every word; then blank them out for the rest.
    fences = []
    lines = text.splitlines(keepends=True)
    pos, open_at, marker = 0, None, None
    for ln in lines:
        m = FENCE.match(ln)
        if open_at is None and m:
            open_at, marker = pos, m.group(1)
        elif open_at is not None and m and m.group(1)[0] == marker[0] \
                and len(m.group(1)) >= len(marker) and not ln.strip()[len(m.group(1)):].strip():
            fences.append((open_at, pos + len(ln)))
            open_at = None
        elif open_at is not None:
            for w in re.finditer(r"\S+", ln):
                refs.append((pos + w.start(), w.group(0), False))
        pos += len(ln)
    if open_at is not None:
        fences.append((open_at, len(text)))
    prose = mask(text, fences)

    # Inline code spans (they may wrap across lines, not across paragraphs).
    spans = []
    for m in CODE_SPAN.finditer(prose):
        if BLANK_LINE.search(m.group(2)):
            continue
        spans.append((m.start(), m.end()))
        for w in re.finditer(r"\S+", m.group(2)):
            refs.append((m.start(2) + w.start(), w.group(0), False))
    rest = mask(prose, spans)

    # Links and images, and reference-style link definitions.
    for m in LINK.finditer(prose):
        refs.append((m.start(1), m.group(1), True))
    for m in REF_LINK.finditer(rest):
        refs.append((m.start(1), m.group(1), True))
    return refs


def check(root, doc):
    """Print and count the missing paths of one document."""
    path = os.path.join(root, doc)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print("%s: cannot read: %s" % (doc, e.strerror))
        return 1
    docdir = os.path.dirname(doc)
    seen = set()
    nbad = 0
    for offset, word, is_link in sorted(references(text)):
        if is_link:
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", word) or word.startswith("#"):
                continue  # a URL or an anchor in this document
            target = clean(word)
            if not target:
                continue
            trailing = target.endswith("/")
            target = os.path.normpath(os.path.join(docdir, target))
            if target.startswith(".."):
                continue  # outside the repository
            target = target.replace(os.sep, "/") + ("/" if trailing else "")
        else:
            target = clean(word)
        if not target or not is_candidate(target):
            continue
        line = line_of(text, offset)
        named = word.strip("\"'()<>,;").rstrip(".,;:") if not is_link else target
        for p in missing_of(root, target):
            if (line, p) in seen:
                continue
            seen.add((line, p))
            shown = p if p == named else "%s (from %s)" % (p, named)
            print("%s:%d: %s: not found" % (doc, line, shown))
            nbad += 1
    return nbad


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = argv[1]
    nbad = sum(check(root, doc) for doc in argv[2:])
    if nbad:
        print("%d path(s) named in the documents do not exist" % nbad)
        return 1
    print("every path named in %s exists" % ", ".join(argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
