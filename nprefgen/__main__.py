import sys

from nprefgen.cli import main

sys.exit(main())
