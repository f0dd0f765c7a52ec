"""scikit-learn-style estimators (work delegated to the drivers)."""
