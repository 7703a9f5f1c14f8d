import sys

from gancourse.classgrade.coordinator import main

sys.exit(main())
