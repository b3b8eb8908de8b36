import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while importing: nothing written yet
    sys.exit(130)

sys.exit(main())
