"""`python -m core.cli` runs the `modeldeploy` console script."""

import sys

from core.cli.main import main

sys.exit(main())
