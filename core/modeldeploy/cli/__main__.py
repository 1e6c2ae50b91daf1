"""`python -m modeldeploy.cli` runs the `modeldeploy` console script."""

import sys

from modeldeploy.cli.main import main

sys.exit(main())
