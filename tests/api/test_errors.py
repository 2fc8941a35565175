"""The web layer's table of error classes to HTTP statuses, looked up along the MRO."""

from __future__ import annotations

import pytest

from pathloop.client import errors
from pathloop.client.api.errors import STATUS_CODES, status_code
from pathloop.client.api.jobs import JobCancelled
from pathloop.client.errors import PathloopError
from pathloop.client.segmentation import errors as model_errors

# Every deliberate error and the status the API answers it with (unchanged since the
# statuses were attributes of the errors themselves).
EXPECTED = {
    errors.PathloopError: 500, errors.ConfigError: 500, errors.InputError: 422,
    errors.PathOutsideRootsError: 403, errors.SlideError: 422, errors.SlideNotFoundError: 404,
    errors.UnsupportedSlideError: 415, errors.CorruptSlideError: 422,
    errors.MissingResolutionError: 422, errors.RegionError: 422,
    errors.TileOutOfRangeError: 404, errors.MaskError: 422, errors.ProtocolError: 422,
    errors.RoundLimitError: 422,
    errors.StoreError: 500, errors.RecordNotFoundError: 404, errors.ConflictError: 409,
    errors.SchemaError: 500, model_errors.DatasetError: 422, model_errors.ArrayInputError: 422,
    model_errors.ModelError: 500, model_errors.MissingFoldError: 500,
    model_errors.PlansMismatchError: 500, model_errors.TrainingError: 500,
    # A job's runner catches these; the API never answers with them.
    errors.Cancelled: 500, JobCancelled: 500,
    errors.LimitError: 429,
}


def _subclasses(cls: type[PathloopError]) -> set[type[PathloopError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


def test_every_error_class_has_its_status() -> None:
    declared = {c for c in _subclasses(PathloopError) if c.__module__.startswith("pathloop.")}
    assert declared == set(EXPECTED)
    for cls, expected in EXPECTED.items():
        error = cls.__new__(cls)  # the status depends on the class alone
        assert status_code(error) == expected, cls.__name__


def test_the_nearest_listed_ancestor_wins() -> None:
    class Outside(errors.PathOutsideRootsError):
        pass

    class Stale(errors.ConflictError):
        pass

    assert status_code(Outside("/x", [])) == 403
    assert status_code(Stale("stale")) == 409
    assert all(issubclass(cls, PathloopError) for cls in STATUS_CODES)


@pytest.mark.parametrize("cls", [errors.PathloopError, errors.InputError])
def test_the_core_errors_carry_no_http(cls: type[PathloopError]) -> None:
    assert not hasattr(cls("x"), "http_status")


@pytest.mark.parametrize("error", [
    errors.ConfigError("bad config"),
    model_errors.TrainingError("/m/logs/nnunet.log", "nnU-Net failed"),
    model_errors.PlansMismatchError("/m/fold_3/checkpoint_final.pth", "/m/plans.json",
                                    "size mismatch for conv"),
])
def test_errors_survive_pickling(error: PathloopError) -> None:
    # Errors cross process boundaries (Ray's simulated sites pickle what they raise);
    # subclasses whose __init__ takes other arguments than the message must rebuild too.
    import pickle

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
