"""trackpoint: TensorFlow-format checkpoints without TensorFlow.

Example::

    import trackpoint
    reader = trackpoint.load_checkpoint("/path/to/run")   # a directory or a prefix
    for name, shape in trackpoint.list_variables("/path/to/run"):
        print(name, shape, reader.get_tensor(name).dtype)
"""

from . import adapters  # noqa: F401 -- the built-in adapters register themselves
from . import dtypes, errors
from .checkpoint import Checkpoint, CheckpointOptions
from .errors import CheckpointError, DataLossError, NotFoundError
from .manager import CheckpointManager
from .state_file import CheckpointState, checkpoints_iterator, get_checkpoint_state
from .state_file import latest_checkpoint
from .state_file import update_checkpoint_state
from .moving_averages import ExponentialMovingAverage
from .reader import CheckpointReader, list_variables, load_checkpoint, load_variable
from .rng import RNGState
from .status import CheckpointLoadStatus, InitializationOnlyStatus, NameBasedSaverStatus
from .trackable import AutoTrackable, JsonState, NoDependency, PythonState, Trackable, Variable
from .views import CheckpointView, TrackableView

__version__ = "0.1.0"

__all__ = [
    "AutoTrackable",
    "Checkpoint",
    "CheckpointLoadStatus",
    "CheckpointManager",
    "CheckpointOptions",
    "CheckpointView",
    "ExponentialMovingAverage",
    "InitializationOnlyStatus",
    "JsonState",
    "NameBasedSaverStatus",
    "NoDependency",
    "PythonState",
    "RNGState",
    "Trackable",
    "TrackableView",
    "Variable",
    "update_checkpoint_state",
    "CheckpointError",
    "CheckpointReader",
    "CheckpointState",
    "DataLossError",
    "NotFoundError",
    "checkpoints_iterator",
    "dtypes",
    "errors",
    "get_checkpoint_state",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
]
