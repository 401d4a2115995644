"""The bundled data sets are exactly what their recipes generate, and load as valid data."""

from __future__ import annotations

import pandas as pd
import pytest

from evaluator import load_individuals, load_panel
from evaluator.data import datasets


@pytest.mark.parametrize("name", datasets.NAMES)
def test_bundled_file_equals_its_recipe(name):
    data, meta = datasets.generate(name)
    pd.testing.assert_frame_equal(datasets.load(name), data, check_dtype=False)
    assert datasets.columns(name) == meta["columns"]
    assert datasets.truth(name) == meta["truth"]
    assert datasets._meta(name) == meta  # the recipe's parameters too (a new generator argument shows up here)


@pytest.mark.parametrize("name", datasets.NAMES)
def test_bundled_file_passes_its_schema(name):
    cols = datasets.columns(name)
    loader = load_panel if "time" in cols else load_individuals
    frame = loader(datasets.path(name), columns=cols)
    assert len(frame) == len(datasets.load(name))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="employment_sib"):
        datasets.path("employment")
