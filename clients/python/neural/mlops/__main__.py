import sys

from neural.mlops.cli import main

sys.exit(main())
