"""``python -m tabtune.cli``: the ``tabtune`` command."""

import sys

from tabtune.cli.app import main

sys.exit(main())
