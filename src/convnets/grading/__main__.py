"""``python -m convnets.grading``: the same as the ``convnets-grade`` command."""
import sys

from . import main

sys.exit(main())
