"""cnnkit's classification metrics, computed in torch, against scikit-learn's (the reference implementation).

Random predictions over random labels, with classes that never occur and classes never predicted (the 0/0 cases
of precision and recall), must give scikit-learn's per-class and averaged precision, recall, F1 and support, and
its confusion matrix.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.evaluation.metrics import classification_metrics

hypothesis = pytest.importorskip("hypothesis", reason="needs hypothesis (pip install cnnkit[dev])")
sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="the reference needs scikit-learn")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(st.integers(2, 12), st.integers(1, 60), st.integers(0, 2**31 - 1))
def test_metrics_equal_scikit_learns(classes: int, count: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    used = max(1, classes - 2)  # the last classes may never occur as labels
    labels = torch.randint(0, used, (count,), generator=generator)
    logits = torch.randn(count, classes, generator=generator)
    logits[:, 0] -= 10  # class 0 is (almost) never predicted
    names = [f"c{i}" for i in range(classes)]
    result = classification_metrics(logits, labels, names)
    truth, predicted, every = labels.numpy(), logits.argmax(1).numpy(), list(range(classes))
    assert result.confusion_matrix == sklearn_metrics.confusion_matrix(truth, predicted, labels=every).tolist()
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(truth, predicted, labels=every, zero_division=0)
    got = np.array([[row.precision, row.recall, row.f1, row.support] for row in result.per_class])
    np.testing.assert_allclose(got, np.round(np.stack([p, r, f, s], 1), 4), atol=1e-12)
    for average, values in (("macro", result.macro), ("weighted", result.weighted)):
        p, r, f, _ = sklearn_metrics.precision_recall_fscore_support(truth, predicted, labels=every, average=average,
                                                                     zero_division=0)
        assert [values["precision"], values["recall"], values["f1"]] == [round(float(v), 4) for v in (p, r, f)]
