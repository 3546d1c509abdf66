"""``python -m wkd_hf.space`` = ``wkd-space``."""

import sys

from .cli import main

sys.exit(main())
