"""pytest: the doctests of an optional module are collected only where its extra is installed."""
import importlib.util

collect_ignore = [] if importlib.util.find_spec("lightning") else ["src/neff/lightning.py"]
