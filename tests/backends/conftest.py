import os
import sys

# Make the test factories importable by path ("backend_factories:...").
sys.path.insert(0, os.path.dirname(__file__))
