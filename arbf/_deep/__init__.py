"""The ``deep-digits`` application (:mod:`arbf._deep.digits`): an autoencoder with RBF
clustering on scikit-learn's digits, built on :mod:`arbf.torch` (torch and scikit-learn
are imported lazily).  The per-sample objectives the network layers share are
:mod:`arbf._math.core.terms`.
"""
