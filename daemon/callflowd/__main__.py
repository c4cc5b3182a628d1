"""``python -m callflowd``: the same as the ``callflowd`` command."""

import sys

from callflowd.cli import main

sys.exit(main())
