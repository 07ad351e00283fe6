"""Every C++ status code becomes the matching Python exception."""

import pytest

from trackpoint import _core_testing, errors

CODES = [
    (3, errors.InvalidArgumentError, ValueError),
    (5, errors.NotFoundError, FileNotFoundError),
    (6, errors.AlreadyExistsError, FileExistsError),
    (7, errors.PermissionDeniedError, PermissionError),
    (8, errors.ResourceExhaustedError, OSError),
    (9, errors.FailedPreconditionError, errors.CheckpointError),
    (11, errors.OutOfRangeError, IndexError),
    (12, errors.UnimplementedError, NotImplementedError),
    (13, errors.InternalError, errors.CheckpointError),
    (14, errors.UnavailableError, OSError),
    (15, errors.DataLossError, errors.CheckpointError),
]


@pytest.mark.parametrize("code,cls,builtin", CODES)
def test_status_codes_map_to_exceptions(code, cls, builtin):
    with pytest.raises(cls) as info:
        _core_testing.raise_status(code, "what went wrong in /some/file")
    assert isinstance(info.value, builtin)
    assert isinstance(info.value, errors.CheckpointError)
    assert str(info.value) == "what went wrong in /some/file"
