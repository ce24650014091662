"""The README and docs/*.md name only what exists (issue 24: the module table drifted; the docs must not).

Every repository path a doc names in backticks (`web/errors.py`, `models/privacy.PATIENT_DATA`,
`templates/email/`), every dotted name of the app's packages (`models.sweep.FINISHERS`), every
picture and every relative link must resolve in this tree. No servers: a plain read of the files
and an import of the modules named.
"""

import importlib
import os
import re

import pytest

from tests.helpers import ROOT

PACKAGES = ("models", "web", "clinic", "portal", "admin", "webhooks", "devstack")
# The domain's contexts, which the docs name without `models.` (`booking.free_providers_at`).
CONTEXTS = ("payments", "booking", "accounts", "messages", "catalog")
FILE_NAME = r".*\.(css|js|py|html|txt|md|png|svg|json|ics|cfg|ini)"
TOP = PACKAGES + ("tests", "templates", "static", "docs", "scripts")
# Paths that exist only at run time (the one-machine stack's data), or patterns standing for many.
RUNTIME = ("instance/",)


def _docs():
    """README.md and every docs/*.md, as (relative path, text)."""
    names = ["README.md"] + sorted(os.path.join("docs", n) for n in os.listdir(os.path.join(ROOT, "docs"))
                                   if n.endswith(".md"))
    return [(n, open(os.path.join(ROOT, n), encoding="utf-8").read()) for n in names]


def _path_exists(token):
    """A repository path, or `module/path.attribute` (the attribute looked up in that module's file)."""
    if os.path.exists(os.path.join(ROOT, token)):
        return True
    head, dot, attr = token.rpartition(".")
    if dot and re.fullmatch(r"[A-Za-z_]\w*", attr) and os.path.exists(os.path.join(ROOT, head + ".py")):
        return _defines(os.path.join(ROOT, head + ".py"), attr)
    return False


def _defines(path, name):
    """Whether the source file defines `name` at some level (a def, a class or an assignment)."""
    text = open(path, encoding="utf-8").read()
    return re.search(rf"^\s*(def|class)\s+{name}\b|^\s*{name}\s*[:=]", text, re.M) is not None


def _dotted_exists(token):
    """`package.module.name…`: the longest importable prefix, then attributes (or a definition in its source)."""
    parts = token.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        obj = module
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                source = getattr(module, "__file__", None)
                return bool(source) and len(parts[cut:]) == 1 and _defines(source, attr)
            obj = getattr(obj, attr)
        return True
    return False


def _problems():
    """Every name a doc gives that does not resolve, as 'doc: name'."""
    found = []
    for doc, text in _docs():
        here = os.path.dirname(doc)
        for token in re.findall(r"`([^`\s]+)`", text):
            token = token.rstrip(",;:")
            if re.search(r"[<>*…{}]", token) or token.startswith(RUNTIME):
                continue
            if "/" in token and token.split("/")[0] in TOP and re.fullmatch(r"[\w./-]+", token):
                if not _path_exists(token.rstrip("/")):
                    found.append(f"{doc}: {token}")
            elif re.fullmatch(FILE_NAME, token):
                continue
            elif re.fullmatch(r"(%s)(\.\w+)+" % "|".join(PACKAGES), token):
                if not _dotted_exists(token):
                    found.append(f"{doc}: {token}")
            elif re.fullmatch(r"(%s)(\.\w+)+" % "|".join(CONTEXTS), token):
                if not _dotted_exists("models." + token):
                    found.append(f"{doc}: {token}")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not os.path.exists(os.path.join(ROOT, here, target.split("#")[0])):
                found.append(f"{doc}: link {target}")
    return found


def test_every_path_module_picture_and_link_the_docs_name_exists():
    assert _problems() == []


@pytest.mark.parametrize("doc", ["README.md"])
def test_the_readme_links_every_doc_and_keeps_its_command_table(doc):
    text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
    missing = [n for n in os.listdir(os.path.join(ROOT, "docs")) if n.endswith(".md") and f"](docs/{n})" not in text]
    assert missing == [], "docs not linked from the README's More list"
    run = [line for line in text.splitlines() if line.startswith("| **run**")]
    assert len(run) == 1 and run[0].split("`")[1] == "./scripts/run"
    assert len(text.splitlines()) < 400, "the README is the front door: details go to docs/"
