"""``python -m dqc``: the same as the ``dqc`` command."""

import sys

from dqc.cli import main

sys.exit(main())
