"""``python -m convnets.claims [--chapter NN]``: evaluate the book's measured claims.

Prints one line per claim, ``chapter<TAB>verdict<TAB>claim<TAB>evidence``, from the cached
results (``results/`` or ``$CONVNETS_RESULTS``), and exits 1 when any claim fails.
"""
from __future__ import annotations

import argparse
import sys

from . import evaluate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m convnets.claims", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chapter", help="only this chapter (two digits, e.g. 02)")
    args = p.parse_args(argv)
    if args.chapter is not None and not (len(args.chapter) == 2 and args.chapter.isdigit()):
        p.error(f"--chapter takes two digits like 02, got {args.chapter!r}")
    res = evaluate(args.chapter)
    if not res:
        print(f"no claims registered{' for chapter ' + args.chapter if args.chapter else ''}",
              file=sys.stderr)
        return 1
    for r in res:
        print(f"{r.claim.chapter}\t{r.verdict}\t{r.claim.text}\t{r.evidence}")
    n_bad = sum(not r.holds for r in res)
    print(f"{len(res) - n_bad} of {len(res)} claims hold", file=sys.stderr)
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
