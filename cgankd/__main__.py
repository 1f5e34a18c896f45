"""``python -m cgankd``: the ``cgankd`` command without the installed console script."""

import sys

from cgankd.cli import main

sys.exit(main())
