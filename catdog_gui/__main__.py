"""`python -m catdog_gui` opens the window."""

import sys

from catdog_gui.gui.app import main

sys.exit(main())
