"""``python -m evaluator``: the same as the ``evaluator`` command."""

import sys

from evaluator.cli import main

sys.exit(main())
