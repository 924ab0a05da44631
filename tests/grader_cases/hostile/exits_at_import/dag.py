"""Ends its own process at import time, with no DAG defined."""

import os

os._exit(3)
