import sys

from gancourse.build.pipeline import main

sys.exit(main())
