"""trackpoint: TensorFlow-format checkpoints without TensorFlow.

Example::

    import trackpoint
    reader = trackpoint.load_checkpoint("/path/to/run")   # a directory or a prefix
    for name, shape in trackpoint.list_variables("/path/to/run"):
        print(name, shape, reader.get_tensor(name).dtype)
"""

from . import dtypes, errors
from .errors import CheckpointError, DataLossError, NotFoundError
from .management import CheckpointState, get_checkpoint_state, latest_checkpoint
from .reader import CheckpointReader, list_variables, load_checkpoint, load_variable

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CheckpointReader",
    "CheckpointState",
    "DataLossError",
    "NotFoundError",
    "dtypes",
    "errors",
    "get_checkpoint_state",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
]
