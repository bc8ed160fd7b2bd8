"""The bibliography holds every paper the lecture names, each entry is cited by a chapter, and
every citation in the chapters has an entry (a missing key would only warn at build time)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIB = (ROOT / "book" / "references.bib").read_text()
CHAPTERS = {p.name: p.read_text() for p in sorted((ROOT / "book").glob("*.md"))}

# the papers the lecture names, by a phrase of their title
LECTURE_PAPERS = {
    "LeNet": "Gradient-Based Learning Applied to Document Recognition",
    "AlexNet": "Classification with Deep Convolutional Neural Networks",
    "VGG": "Very Deep Convolutional Networks for Large-Scale Image Recognition",
    "GoogLeNet": "Going Deeper with Convolutions",
    "ResNet": "Deep Residual Learning for Image Recognition",
    "Xception": "Xception: Deep Learning with Depthwise Separable Convolutions",
    "Batch Normalization": "Batch Normalization: Accelerating Deep Network Training",
    "Layer Normalization": "Layer Normalization",
    "He initialisation": "Delving Deep into Rectifiers",
    "Simonyan et al. (class models, saliency)": "Deep Inside Convolutional Networks",
    "Zeiler and Fergus": "Visualizing and Understanding Convolutional Networks",
    "Yosinski et al.": "How Transferable Are Features in Deep Neural Networks",
    "SE": "Squeeze-and-Excitation Networks",
    "MobileNet": "Efficient Convolutional Neural Networks for Mobile Vision Applications",
    "EfficientNet": "Rethinking Model Scaling for Convolutional Neural Networks",
}


def entries() -> dict[str, str]:
    """key -> title"""
    out = {}
    for m in re.finditer(r"@\w+\{([^,]+),(.*?)\n\}", BIB, re.S):
        title = re.search(r"title\s*=\s*\{(.*)\},?\s*$", m.group(2), re.M)
        out[m.group(1).strip()] = re.sub(r"[{}]", "", title.group(1)) if title else ""
    return out


def cited_keys() -> set[str]:
    keys = set()
    for text in CHAPTERS.values():
        for m in re.finditer(r"\{(?:foot)?cite(?::\w+)?\}`([^`]+)`", text):
            keys.update(k.strip() for k in m.group(1).split(","))
    return keys


@pytest.mark.parametrize("paper", sorted(LECTURE_PAPERS))
def test_lecture_paper_is_in_the_bibliography_and_cited(paper):
    phrase = LECTURE_PAPERS[paper].lower()
    keys = [k for k, t in entries().items() if phrase in t.lower()]
    assert keys, f"references.bib has no entry for {paper} (title with {LECTURE_PAPERS[paper]!r})"
    assert set(keys) & cited_keys(), f"{paper} ({keys[0]}) is in references.bib but no chapter cites it"


def test_every_citation_has_an_entry_and_no_key_is_defined_twice():
    keys = re.findall(r"@\w+\{([^,]+),", BIB)
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, f"keys defined twice in references.bib: {sorted(dupes)}"
    missing = cited_keys() - set(keys)
    assert not missing, f"cited but not in references.bib: {sorted(missing)}"


def test_every_chapter_that_cites_has_its_bibliography():
    for name, text in CHAPTERS.items():
        if "{footcite}" in text:
            assert "{footbibliography}" in text, f"{name} cites papers but has no {{footbibliography}}"


def test_bibliography_parses():
    """The book's build reads references.bib with pybtex: one missing brace stops the build."""
    from pybtex.database import parse_file

    entries = parse_file(str(Path(__file__).resolve().parents[1] / "book" / "references.bib")).entries
    assert len(entries) >= 40
