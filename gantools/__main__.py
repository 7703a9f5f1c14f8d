import sys

from gantools.cli import main

sys.exit(main())
