"""`python -m canvas_engineering` runs the command-line tool."""

import sys

from canvas_engineering.cli import main

sys.exit(main())
