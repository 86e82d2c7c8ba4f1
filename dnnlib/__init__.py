"""Core of the toolkit: utilities (`util`), the network wrapper and pickle format (`tflib`), custom ops (`ops`)."""

from . import util
from .util import EasyDict, make_run_dir_path
