"""``python -m tabtune``: the ``tabtune`` command (as ``python -m tabtune.cli``)."""

import sys

from tabtune.cli.app import main

sys.exit(main())
