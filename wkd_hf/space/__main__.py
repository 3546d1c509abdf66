"""``python -m wkd_hf.space`` = ``wkd-space``."""

import sys

from ..cli.space import main

sys.exit(main())
