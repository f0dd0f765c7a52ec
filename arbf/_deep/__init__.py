"""Support for the deep-learning integrations (:mod:`arbf.torch`, :mod:`arbf.jax`).

- :mod:`arbf._deep.objective` — per-sample RBF clustering objectives, generic over the
  Array API namespace, shared by the torch layer and the JAX functions;
- :mod:`arbf._deep.digits` — the ``deep-digits`` experiment (autoencoder + RBF
  clustering on scikit-learn's digits; needs torch and scikit-learn, imported lazily).
"""
