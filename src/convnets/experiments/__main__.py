"""``python -m convnets.experiments NAME [--quick]``: run an experiment and save its results
(under ``$CONVNETS_RESULTS``, the package's shipped ``results/`` or the checkout's ``results/``)."""
from __future__ import annotations

import argparse
import json
import sys

from . import available, results_dir, run_experiment


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m convnets.experiments", description=__doc__)
    p.add_argument("name", nargs="?", help=f"one of: {', '.join(available())}")
    p.add_argument("--quick", action="store_true", help="reduced size (for tests); results not saved")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = p.parse_args(argv)
    if args.list or not args.name:
        print("\n".join(available()))
        return 0
    if args.name not in available():
        p.error(f"unknown experiment {args.name!r}; choose from: {', '.join(available())}")
    if not args.quick:
        try:
            results_dir()
        except FileNotFoundError as e:  # say where results would go before a long run, not after
            print(f"error: {e}", file=sys.stderr)
            return 2
    result = run_experiment(args.name, quick=args.quick)
    if args.quick:
        print(json.dumps(result, indent=1)[:2000])
    else:
        print(f"saved {results_dir() / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
