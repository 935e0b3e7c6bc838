"""``python -m gobo`` is ``gobo``."""

import sys

from gobo.cli import main

sys.exit(main())
