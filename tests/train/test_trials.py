"""fastopt.train.trials: the Trial record and its CSV/JSON export."""

import csv
import io
import json
import math
import pickle

import numpy as np
import pytest

from fastopt.train import (
    Trial,
    Uniform,
    asha_search,
    random_search,
    trials_from_json,
    trials_to_csv,
    trials_to_json,
)


def test_status_follows_the_error_by_default():
    assert Trial(0, {}, 1.0).status == "completed"
    assert Trial(0, {}, math.nan, "ValueError: x").status == "failed"
    assert Trial(0, {}, 1.0, status="stopped", resource=3.0).status == "stopped"
    with pytest.raises(ValueError, match="^status: expected one of 'completed', 'stopped', "):
        Trial(0, {}, 1.0, status="paused")
    t = Trial(2, {"x": 1}, 0.5, history=[(1, 0.7), (np.float32(3), 0.5)])
    assert t.history == ((1.0, 0.7), (3.0, 0.5)) and pickle.loads(pickle.dumps(t)) == t


def _curve(params, reporter):
    for epoch in range((reporter.checkpoint or 0) + 1, 10):
        reporter.report(epoch, (params["x"] - 0.3) ** 2 + 1 / epoch, checkpoint=epoch)


def _some_trials():
    space = {"x": Uniform(0.0, 1.0)}
    trials = asha_search(_curve, space, 10, seed=0, max_resource=9)
    extra = [
        Trial(10, {"x": np.float64(0.5), "act": "relu", "layers": (64, np.int64(32))},
              math.nan, "KilledWorker: worker died"),
        Trial(11, {"x": 0.1, "flag": True, "none": None}, math.inf),
        Trial(12, {"x": -0.0}, -math.inf, history=[(1.0, math.nan)]),
    ]
    return trials + extra


def test_json_round_trip(tmp_path):
    trials = _some_trials()
    path = tmp_path / "trials.json"
    trials_to_json(trials, path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text  # standard JSON
    records = json.loads(text)
    assert records[10]["score"] is None and records[11]["score"] == "inf"
    assert records[10]["params"] == {"x": 0.5, "act": "relu", "layers": [64, 32]}
    back = trials_from_json(path)
    assert len(back) == len(trials)
    for a, b in zip(back, trials):
        assert (a.index, a.status, a.error, a.resource, a.resource_used) == (
            b.index, b.status, b.error, b.resource, b.resource_used)
        assert a.score == b.score or (math.isnan(a.score) and math.isnan(b.score))
        assert len(a.history) == len(b.history)
    assert back[:10] == trials[:10]  # exactly, floats included
    assert back[10].params["layers"] == [64, 32]  # a tuple comes back as a list
    assert math.isnan(back[12].history[0][1])


def test_csv_has_a_column_per_parameter(tmp_path):
    trials = _some_trials()
    buf = io.StringIO()
    trials_to_csv(trials, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == ["index", "status", "score", "error", "resource", "resource_used",
                             "param:x", "param:act", "param:layers", "param:flag",
                             "param:none", "history"]
    for row, t in zip(rows, trials):
        assert int(row["index"]) == t.index and row["status"] == t.status
        assert float(row["param:x"]) == t.params["x"]
        assert json.loads(row["history"]) == [[r, None if math.isnan(s) else s]
                                              for r, s in t.history]
    assert rows[0]["score"] == repr(trials[0].score)
    assert rows[10]["score"] == "" and rows[10]["error"] == "KilledWorker: worker died"
    assert rows[10]["param:layers"] == "[64, 32]" and rows[10]["param:act"] == "relu"
    assert rows[0]["param:act"] == "" and rows[11]["score"] == "inf"
    path = tmp_path / "t.csv"
    trials_to_csv(random_search(lambda p: p["x"], {"x": Uniform(0, 1)}, 3, seed=0), path)
    assert path.read_text().splitlines()[0] == (
        "index,status,score,error,resource,resource_used,param:x,history")


def test_export_checks_its_arguments():
    with pytest.raises(TypeError, match=r"^trials\[1\]: expected a Trial, got 3"):
        trials_to_json([Trial(0, {}, 1.0), 3], io.StringIO())
    with pytest.raises(TypeError, match=r"^trials\[0\]\.params\['f'\]: expected a JSON value"):
        trials_to_json([Trial(0, {"f": object()}, 1.0)], io.StringIO())
    with pytest.raises(TypeError, match="^file: expected a path or a text file object"):
        trials_to_csv([], 42)
    with pytest.raises(ValueError, match="^file: expected a JSON list of trials"):
        trials_from_json(io.StringIO('{"index": 0}'))
