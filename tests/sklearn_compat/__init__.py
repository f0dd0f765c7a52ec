"""scikit-learn's own K-Means tests, run against arbf (see :mod:`.plugin`)."""
